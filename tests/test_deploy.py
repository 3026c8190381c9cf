"""The operational kit, proven with the programs its users run: hadolint, a wheel in a fresh venv,
kubectl kustomize, kubernetes-validate, promtool, amtool, check-jsonschema, and an end-to-end
stack of the real Prometheus and Alertmanager scraping `dli-exporter --demo`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.helpers import free_port, relabel

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "dli-exporter.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "dli-exporter.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "dli-exporter.json"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
# The kit's one source (deploy/kit/rules.py) and its generator, imported as the Makefile runs them.
sys.path.insert(0, str(DEPLOY / "kit"))
import generate as kit_generate  # noqa: E402
import rules as kit_rules  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: make tools / the test extra install it")
        pytest.skip(f"{name} not installed")
    return path


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def alerts_of(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rules["groups"] for r in group["rules"] if "alert" in r]


# --- Docker image ---

def test_dockerfile_is_clean_under_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "warning", str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_fixed_non_root_user_with_exec_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert 'ENTRYPOINT ["dli-exporter"]' in text and "EXPOSE 9822" in text
    assert text.count("FROM ") == 2  # build stage and runtime stage
    ignored = (ROOT / ".dockerignore").read_text()
    assert ignored.splitlines()[1] == "*"


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    """What the image does, without a Docker engine: build the wheel, install it alone, run it."""
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"),
                str(ROOT), timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("dli_exporter-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    pip = run(str(tmp_path / "venv" / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel),
              timeout=600)
    assert pip.returncode == 0, pip.stderr
    port = free_port()
    # Run from an empty directory so the checkout's exporter/ cannot be imported by accident.
    proc = subprocess.Popen([str(tmp_path / "venv" / "bin" / "dli-exporter"), "--demo", "--listen-address",
                             f"127.0.0.1:{port}"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/metrics")
        # The demo's three readable projects, found by discovery (none configured), all read.
        assert body.count('dli_up{project_id="') == 3 and " 0.0\n" not in _lines(body, "dli_up{")
        assert body.count('source="discovered"') == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def _lines(body: str, prefix: str) -> str:
    return "".join(line + "\n" for line in body.splitlines() if line.startswith(prefix))


@contextmanager
def _prometheus_servers(tmp_path: Path, configs: dict[str, dict[str, Any]]) -> Iterator[list[str]]:
    """Real Prometheus servers, one per configuration (written as ``{name}.yml`` in ``tmp_path``,
    where its relative paths point, each with its own storage), ready: their URLs, in order."""
    servers: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name, config in configs.items():
            (tmp_path / f"{name}.yml").write_text(yaml.safe_dump(config))
            port = free_port()
            servers.append((f"http://127.0.0.1:{port}", subprocess.Popen(
                [tool("prometheus"), f"--config.file={tmp_path / name}.yml", f"--storage.tsdb.path={tmp_path / name}",
                 f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=tmp_path)))
        for url, _ in servers:
            _wait_for(f"{url}/-/ready")
        yield [url for url, _ in servers]
    finally:
        for _, proc in servers:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_for(url: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            resp = requests.get(url, timeout=5)
            if resp.status_code == 200:
                return resp.text
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


# --- Kubernetes ---

K8S = DEPLOY / "kubernetes"


def test_kustomize_builds_the_base() -> None:
    result = run(tool("kubectl"), "kustomize", str(K8S))  # the machine's image has kubectl (1.21+ for labels:)
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout))
    # No Secret: applying the base (kubectl apply -k, GitOps) never overwrites the real one.
    assert kinds == ["ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Service",
                     "ServiceMonitor"]
    assert all(doc["metadata"]["namespace"] == "monitoring" for doc in yaml.safe_load_all(result.stdout))


def test_core_objects_pass_strict_validation() -> None:
    files = [str(K8S / name) for name in ("deployment.yaml", "service.yaml", "secret.example.yaml", "pdb.yaml",
                                          "networkpolicy.yaml", "grafana-dashboard.yaml")]
    result = run(tool("kubernetes-validate"), "--strict", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_replicas_stay_apart_and_only_prometheus_reaches_them() -> None:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["replicas"] == 2
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["labelSelector"]["matchLabels"] == selector
    pdb = yaml.safe_load((K8S / "pdb.yaml").read_text())
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    policy = yaml.safe_load((K8S / "networkpolicy.yaml").read_text())
    assert policy["spec"]["podSelector"]["matchLabels"] == selector and policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {}, "podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "prometheus"}}}]


def test_the_memory_limit_follows_the_readmes_sizing_table() -> None:
    """The base's limit is the README's row for 10,000 jobs, which holds that row's measured peak
    with room to spare."""
    container = yaml.safe_load((K8S / "deployment.yaml").read_text())["spec"]["template"]["spec"]["containers"][0]
    readme = (ROOT / "README.md").read_text()
    rows = {int(m.group(1).replace(",", "")): (float(m.group(2)), m.group(3), m.group(4)) for m in re.finditer(
        r"^\| ([\d,]+) \| ([\d.]+) MB \| (\d+Mi) \| (\d+Mi) \|$", readme, re.MULTILINE)}
    peak, request, limit = rows[10_000]
    resources = container["resources"]
    assert resources["requests"]["memory"] == request and resources["limits"]["memory"] == limit
    assert int(limit.removesuffix("Mi")) * 1.048576 >= 1.5 * peak
    assert all(int(lim.removesuffix("Mi")) * 1.048576 >= 1.5 * mb for mb, _, lim in rows.values())


def test_the_probe_patch_allows_only_its_targets(tmp_path: Path) -> None:
    """An overlay of the base with the probe example's patch: discovery off, /probe limited to the
    ScrapeConfig's own list."""
    overlay = tmp_path / "overlay"
    shutil.copytree(K8S, overlay / "base")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["base"], "patches": [{"path": "base/examples/probe-env-patch.yaml"}]}))
    built = run(tool("kubectl"), "kustomize", str(overlay))
    assert built.returncode == 0, built.stderr
    [deployment] = [d for d in yaml.safe_load_all(built.stdout) if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    config = yaml.safe_load((K8S / "examples" / "probe-scrapeconfig.yaml").read_text())
    assert env["DLI_EXPORTER_DISCOVERY"] == "off"
    assert env["DLI_EXPORTER_PROBE_ALLOWED"].split(",") == config["spec"]["staticConfigs"][0]["targets"]


def test_the_deployment_is_locked_down() -> None:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["envFrom"][0]["secretRef"]["name"] == "dli-exporter-credentials"


def test_the_example_secret_holds_placeholders_only() -> None:
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert all(value.startswith("REPLACE_WITH_") for value in secret["stringData"].values())


def test_the_prometheus_rule_holds_the_same_rules_as_the_rules_file() -> None:
    operator = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"] == yaml.safe_load(RULES.read_text())


# --- Prometheus rules and configuration ---

def test_rules_pass_promtool_check() -> None:
    result = run(tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    names = {rule["alert"] for rule in alerts_of(yaml.safe_load(RULES.read_text()))}
    required = {"DliExporterDown", "DliExporterReplicaDown", "DliExporterAbsent", "DliProjectUnreadable",
                "DliProjectReadsFlapping", "DliSweepNearScrapeTimeout", "DliDetailViewStale", "DliJobRunningException",
                "DliJobSubmitFailed", "DliJobRestarting", "DliProjectArrears", "DliQueueJobsRunningException",
                "DliQueueFull", "DliProbeFailed", "DliCredentialRejected", "DliApiThrottled", "DliJobStuck",
                "DliJobCancelFailed", "DliRunningJobGone", "DliRunningJobsDropped", "DliExporterWebConfigReloadFailed",
                "DliDiscoveryFailing"}
    assert required <= names
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for name in names:
        expectations = [case["exp_alerts"] for case in cases if case["alertname"] == name]
        assert any(expectations), f"{name} is never tested firing"
        assert any(not e for e in expectations), f"{name} is never tested not firing"


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the second-level headings."""
    return {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
            for line in markdown.splitlines() if line.startswith("## ")}


def test_every_alert_is_annotated_links_its_runbook_and_job_alerts_name_the_job() -> None:
    runbooks = _anchors(RUNBOOKS.read_text())
    for rule in alerts_of(yaml.safe_load(RULES.read_text())):
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        base, _, anchor = annotations["runbook_url"].partition("#")
        assert base == kit_rules.RUNBOOKS and anchor == name.lower() and anchor in runbooks, name
        # A notification groups by alert name and project: its summary must be the same for all.
        assert not re.findall(r"\$labels\.(?!project_id\b)", annotations["summary"]), name
        if name.startswith("DliJob"):
            # The job's name and queue come from the recorded info join (dli_job_info, one per job).
            assert f"group_left ({kit_rules.JOB_LABELS})" in rule["expr"], name
            assert re.search(r"\) dli:job_(info:one|trouble:info)\b", rule["expr"]), name
            assert "{{ $labels.name }}" in annotations["description"], name
    # A section for every alert, and none for an alert that is no more (besides the commands).
    alerts = {rule["alert"].lower() for rule in alerts_of(yaml.safe_load(RULES.read_text()))}
    assert runbooks == alerts | {"commands-used-below"}


def test_one_scrape_job_name_everywhere() -> None:
    """The README's scrape configuration, the example configuration, the Kubernetes Service (the
    ServiceMonitor's job label) and the rules all say dli-exporter: a user who follows any of them
    gets working alerts."""
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r"job_name: (\S+)", readme))
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    names |= {job["job_name"] for job in config["scrape_configs"]}
    service = yaml.safe_load((K8S / "service.yaml").read_text())
    monitor = yaml.safe_load((K8S / "servicemonitor.yaml").read_text())
    names.add(service["metadata"]["labels"][monitor["spec"]["jobLabel"]])
    assert names == {"dli-exporter"}
    # The rules also watch the /probe job, by the name the probe examples give it.
    probe_jobs = {job["job_name"] for name in ("probe.yml", "probe-sharded.yml")
                  for job in yaml.safe_load((DEPLOY / "prometheus" / name).read_text())["scrape_configs"]
                  if job.get("metrics_path") == "/probe"}
    assert set(re.findall(r'job="([^"]+)"', RULES.read_text())) == names | probe_jobs == {"dli-exporter", "dli-probe"}


def test_prometheus_example_config_is_valid() -> None:
    result = run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["job_name"] == "dli-exporter" and "scrape_timeout" in job


def test_the_probe_example_config_is_valid_and_relabels_as_documented() -> None:
    config_path = DEPLOY / "prometheus" / "probe.yml"
    result = run(tool("promtool"), "check", "config", str(config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(config_path.read_text())["scrape_configs"]}
    assert jobs["dli-probe"]["metrics_path"] == "/probe" and "dli-exporter" in jobs
    # The relabelling, applied as Prometheus applies it (Go's RE2 anchors the regex).
    rules = jobs["dli-probe"]["relabel_configs"]
    for address, target, region in (("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d4e5f60718293a4b5c6d7e8f9", None),
                                    ("ap-southeast-1:" + "f" * 32, "f" * 32, "ap-southeast-1")):
        labels = relabel(rules, {"__address__": address})
        assert labels["__param_target"] == target and labels["instance"] == target
        assert labels.get("__param_region") == region and labels["__address__"] == "dli-exporter:9822"


def test_the_generated_kit_is_up_to_date() -> None:
    """The rules, the PrometheusRule and the dashboard's ConfigMap are what deploy/kit writes
    from their one source (`make kit` after an edit there)."""
    result = subprocess.run([sys.executable, str(DEPLOY / "kit" / "generate.py"), "--check"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_the_runbook_and_dashboard_urls_are_set_in_one_place() -> None:
    """Every alert links its runbook section (which exists) and the dashboard, from deploy/kit's
    two constants; nothing else in the kit spells them."""
    source = kit_rules
    runbooks = (DEPLOY.parent / "docs" / "runbooks.md").read_text()
    for rule in alerts_of(yaml.safe_load(RULES.read_text())):
        url = rule["annotations"]["runbook_url"]
        assert url == f"{source.RUNBOOKS}#{rule['alert'].lower()}"
        assert f"\n## {rule['alert']}\n" in runbooks, rule["alert"]
        assert rule["annotations"]["dashboard_url"].startswith(source.DASHBOARD)
    # Only the generator's outputs spell them (make test checks those are up to date).
    spelled = {path for path in [*DEPLOY.rglob("*.y*ml"), *DEPLOY.rglob("*.json"), ROOT / "README.md"]
               if source.RUNBOOKS in path.read_text() or source.DASHBOARD in path.read_text()}
    assert spelled <= set(kit_generate.outputs()), spelled - set(kit_generate.outputs())
    dashboard = json.loads(DASHBOARD.read_text())
    links = [link["url"] for panel in [dashboard, *dashboard["panels"]] for link in panel.get("links", [])]
    assert links and all(url.startswith("${runbooks}") for url in links), links
    # The alerts' dashboard_url opens this dashboard: its uid is in the URL.
    assert f"/d/{dashboard['uid']}/" in source.DASHBOARD


def test_alertmanager_example_config_is_valid() -> None:
    result = run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_inhibition_and_grouping_keeps_deployments_apart() -> None:
    """In a shared Alertmanager, one deployment's outage must not mute another's alerts: every
    inhibit rule has an `equal` with cluster and namespace, and every route groups by them."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for rule in config["inhibit_rules"]:
        assert {"cluster", "namespace"} <= set(rule.get("equal", [])), rule
    for route in [config["route"], *config["route"]["routes"]]:
        assert {"cluster", "namespace"} <= set(route.get("group_by", config["route"]["group_by"])), route


@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=DliJobRunningException", "severity=critical"], "dli-oncall"),
    (["alertname=DliJobSubmitFailed", "severity=warning"], "dli-team"),
    (["alertname=DliProbeFailed", "severity=critical"], "dli-oncall"),
    (["alertname=DliCredentialRejected", "severity=critical"], "dli-oncall"),
    (["alertname=DliJobStuck", "severity=warning"], "dli-team"),
    (["alertname=DliApiThrottled", "severity=warning"], "dli-team"),
])
def test_alertmanager_routes_each_alert_as_documented(labels: list[str], receiver: str) -> None:
    result = run(tool("amtool"), "config", "routes", "test", "--config.file",
                 str(DEPLOY / "alertmanager" / "alertmanager.yml"), *labels)
    assert result.returncode == 0 and result.stdout.strip() == receiver, result.stdout + result.stderr


def test_compose_file_follows_the_compose_spec() -> None:
    compose_file = str(DEPLOY / "docker-compose.yml")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", compose_file)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"dli-exporter", "prometheus", "alertmanager", "grafana", "alert-receiver"}
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
        # Published on loopback only.
        assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", [])), service
    # Credentials reach the exporter's container (compose's .env only fills in variables).
    assert services["dli-exporter"]["env_file"] == [{"path": "./dli-exporter.env", "required": False}]
    # Every command works without Grafana's password (no `:?` that fails them all); Grafana
    # itself refuses to start without it.
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert ":?" not in (DEPLOY / "docker-compose.yml").read_text()
    assert 'if [ -z "$$GF_SECURITY_ADMIN_PASSWORD" ]; then' in grafana["entrypoint"][-1]
    assert grafana["entrypoint"][-1].endswith("exec /run.sh")
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"] and service["security_opt"] == ["no-new-privileges:true"], name
        assert service["mem_limit"], name
        assert "image" in service and re.search(r":v?\d+\.\d+\.\d+", service["image"]), name  # a pinned tag
    assert "alertmanager-data:/alertmanager" in services["alertmanager"]["volumes"]
    assert "--storage.path=/alertmanager" in services["alertmanager"]["command"]
    # The example Alertmanager configuration's webhooks go to a service that exists.
    alertmanager = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hosts = {hook["url"].split("/")[2].split(":")[0] for receiver in alertmanager["receivers"]
             for hook in receiver["webhook_configs"]}
    assert hosts == {"alert-receiver"}


def test_the_compose_alert_receiver_logs_each_notification() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(DEPLOY / "alert-receiver" / "receiver.py")],
                            env={**os.environ, "PORT": str(port)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None and "listening" in proc.stderr.readline()
        payload = {"status": "firing", "groupLabels": {"alertname": "DliJobRunningException", "project_id": "p1"},
                   "alerts": [{"status": "firing", "labels": {"alertname": "DliJobRunningException",
                                                               "severity": "critical", "name": "payments-fraud-detect"},
                               "annotations": {"summary": "DLI jobs of project p1 stopped on an exception"}}]}
        resp = requests.post(f"http://127.0.0.1:{port}/oncall", json=payload, timeout=5)
        assert resp.status_code == 200
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == (
            "receiver=oncall status=firing group={alertname=DliJobRunningException,project_id=p1} alerts=1 "
            "[firing DliJobRunningException critical payments-fraud-detect] "
            'summary="DLI jobs of project p1 stopped on an exception"')
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# --- End to end: the real Prometheus and Alertmanager with the demo ---

class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class Stack:
    """The demo exporter, the real Prometheus with the rules and the real Alertmanager with the
    example configuration, notifying a local webhook. ``shipped``: the example configurations'
    intervals, ``for`` durations and group waits as they are; otherwise all made quick."""

    def __init__(self, root: Path, *, shipped: bool = False) -> None:
        self.root = root
        self.shipped = shipped
        self.procs: list[subprocess.Popen[bytes]] = []
        self.received: list[dict[str, Any]] = []
        self.exporter_port, self.am_port, self.prom_port, self.hook_port = (free_port() for _ in range(4))
        self.prometheus = f"http://127.0.0.1:{self.prom_port}"

    def start(self) -> None:
        handler = type("Webhook", (_Webhook,), {"received": self.received})
        self.hook = ThreadingHTTPServer(("127.0.0.1", self.hook_port), handler)
        threading.Thread(target=self.hook.serve_forever, daemon=True).start()
        self._spawn([str(VENV_BIN / "dli-exporter"), "--demo", "--listen-address", f"127.0.0.1:{self.exporter_port}"])
        self._spawn([tool("prometheus-alertmanager"), f"--config.file={self._alertmanager_config()}",
                     f"--storage.path={self.root / 'am'}", f"--web.listen-address=127.0.0.1:{self.am_port}",
                     "--cluster.listen-address="])
        self._spawn([tool("prometheus"), f"--config.file={self._prometheus_config()}",
                     f"--storage.tsdb.path={self.root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.prom_port}"])
        _wait_for(f"http://127.0.0.1:{self.exporter_port}/healthz")
        _wait_for(f"http://127.0.0.1:{self.am_port}/-/ready")
        _wait_for(f"{self.prometheus}/-/ready")

    def _spawn(self, cmd: list[str]) -> None:
        log = open(self.root / f"{Path(cmd[0]).name}.log", "wb")  # noqa: SIM115  (closed with the process)
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root))

    def _alertmanager_config(self) -> Path:
        """The example configuration, pointed at our webhook and made quick."""
        config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        for route in [config["route"], *config["route"].get("routes", [])]:
            if not self.shipped:
                route["group_wait"] = "1s"
        for receiver in config["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = f"http://127.0.0.1:{self.hook_port}/{receiver['name']}"
        path = self.root / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _prometheus_config(self) -> Path:
        """The example configuration and rules, aimed at the demo, with 1 s intervals and no `for`."""
        rules = yaml.safe_load(RULES.read_text())
        for rule in alerts_of(rules):
            if not self.shipped:
                rule["for"] = "0s"
        (self.root / "rules.yml").write_text(yaml.safe_dump(rules))
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        if not self.shipped:
            config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = ["rules.yml"]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{self.am_port}"]
        job = config["scrape_configs"][0]
        if not self.shipped:
            job.update(scrape_interval="1s", scrape_timeout="1s")
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{self.exporter_port}"]
        path = self.root / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def query(self, expr: str) -> list[dict[str, Any]]:
        resp = requests.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.hook.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tool("prometheus")
    tool("prometheus-alertmanager")
    running = Stack(tmp_path_factory.mktemp("stack"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.e2e
def test_the_demos_failing_jobs_reach_the_webhook_as_one_grouped_page(stack: Stack) -> None:
    """The demo's failing job pages on-call once, grouped by alert name and project, with no
    exporter target in the alert's identity."""
    group = None
    deadline = time.monotonic() + 90
    while group is None and time.monotonic() < deadline:
        for payload in list(stack.received):
            if payload["groupLabels"].get("alertname") != "DliJobRunningException":
                continue
            names = {alert["labels"].get("name") for alert in payload["alerts"]}
            if "payments-fraud-detect" in names:
                group = payload
                break
        time.sleep(0.5)
    assert group is not None, f"no DliJobRunningException notification arrived; got {stack.received!r}"
    assert group["receiver"] == "dli-oncall" and set(group["groupLabels"]) == {"alertname", "project_id"}
    for alert in group["alerts"]:
        assert alert["status"] == "firing" and alert["labels"]["severity"] == "critical"
        assert not {"instance", "job", "status"} & set(alert["labels"]), alert["labels"]
        assert alert["labels"]["name"] in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith("#dlijobrunningexception")
    time.sleep(5)  # group_interval is 5 minutes: nothing more for this group within it
    same = [p for p in stack.received if p["groupLabels"] == group["groupLabels"]]
    assert len(same) == 1, same
    # And every group was notified once: one outage, one notification.
    keys = [tuple(sorted(p["groupLabels"].items())) for p in stack.received]
    assert len(keys) == len(set(keys)), keys


@pytest.mark.e2e
def test_the_demos_full_queue_fires_dli_queue_full_and_nothing_else_does(stack: Stack) -> None:
    """The demo's full queue (its running jobs ask every CU it has, a job waits on it) is the
    one DliQueueFull: the real Prometheus evaluating the shipped rule over the demo's series."""
    from exporter.simulator import DEMO_PROJECTS, FULL_QUEUE

    deadline = time.monotonic() + 60
    firing: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not firing:
        firing = stack.query('ALERTS{alertname="DliQueueFull", alertstate="firing"}')
        time.sleep(1)
    assert [(a["metric"]["project_id"], a["metric"]["queue"]) for a in firing] == [(DEMO_PROJECTS[0], FULL_QUEUE)]
    [asked] = stack.query(f'sum by (queue) ((max by (project_id, job_id) (dli_job_compute_units) and on '
                          f'(project_id, job_id) max by (project_id, job_id) (dli_job_status{{status="job_running"}})) '
                          f'* on (project_id, job_id) group_left (queue) topk by (project_id, job_id) (1, '
                          f'dli_job_info{{project_id="{DEMO_PROJECTS[0]}", queue="{FULL_QUEUE}"}}))')
    [size] = stack.query(f'max(dli_queue_compute_units{{project_id="{DEMO_PROJECTS[0]}", queue="{FULL_QUEUE}"}})')
    assert asked["value"][1] == size["value"][1] == "32"


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _substitute(expr: str) -> str:
    # What Grafana does before sending: "All" is the variables' allValue, ranges become durations.
    return (expr.replace("$project", ".*").replace("$queue", ".*").replace("$region", ".*")
            .replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s"))


def _relaxed(title: str, expr: str) -> str:
    """A panel that is rightly empty when nothing happened is checked with its filter relaxed: the
    same query counting zero restarts too must find the jobs (no job restarted in the test's few
    seconds), and the transition table's reasons, over every status, the described ones (DLI gives
    a job waiting in job_submitting no description)."""
    if title.startswith("Most restarted jobs"):
        return expr.replace(") > 0)", ") >= 0)")
    if title.startswith("Jobs in a transition"):
        return expr.replace('status=~"job_submitting|job_init|job_canceling|job_savepointing"', 'status=~".+"')
    return expr


# Panels rightly without data in a setup: /probe targets where Prometheus probes none.
OPTIONAL = {"Probe targets up"}


@pytest.mark.e2e
def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 15
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # rates and increases need a few scrapes first
        if stack.query('count(count_over_time(dli_up[1m]) >= 5)'):
            break
        time.sleep(1)
    empty = [(title, expr) for title, expr in queries if title not in OPTIONAL
             and not stack.query(_substitute(expr)) and not stack.query(_substitute(_relaxed(title, expr)))]
    assert not empty, f"panels without data: {empty}"


@pytest.mark.e2e
def test_dashboard_variables_have_values(stack: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
        assert match, var["query"]
        selector, label = _substitute(match.group(1)), match.group(2)
        deadline = time.monotonic() + 30  # the first scrapes and rule evaluations
        while True:
            resp = requests.get(f"{stack.prometheus}/api/v1/label/{label}/values", params={"match[]": selector},
                                timeout=10)
            if len(resp.json()["data"]) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(resp.json()["data"]) >= 2, (var["name"], resp.text)


def test_dashboard_panels_are_built_to_render() -> None:
    """What Grafana would show wrongly without an error: default thresholds (red at 80), bar
    gauges fed a table (one bar), a datasource whose interval is not the shipped scrape interval,
    and per-job panels that keep the exporter's target labels."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        title = panel["title"]
        if panel["type"] == "stat":
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps and steps[0]["value"] is None, title
        if panel["type"] == "bargauge":
            assert all(t.get("format") == "time_series" for t in panel["targets"]), title
            assert panel["options"]["reduceOptions"]["values"] is False, title
        for t in panel.get("targets", []):
            expr = t["expr"]
            # One series per job whatever the replicas: jobs' info and statuses from the recording
            # rules, raw per-job series aggregated over the replicas, joins keeping deployments apart.
            assert "dli_job_info" not in expr and "dli_job_status{" not in expr and "dli_jobs{" not in expr, title
            assert all(join.startswith("on (cluster, namespace, ") or join == "on () "
                       for join in re.findall(r"on \([^)]*\) ", expr)), title
            assert all(agg.startswith("by (cluster, namespace, ") or "project_id" not in agg or "job_id" not in agg
                       for agg in re.findall(r"by \([^)]*\)", expr)), title
        if panel["type"] == "stat" and any("dli:" in t["expr"] for t in panel["targets"]):
            # Nothing read: "no data", never a green 0.
            assert panel["fieldConfig"]["defaults"].get("noValue", "").startswith("no data"), title
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    shipped = {job["scrape_interval"] for job in config["scrape_configs"] if job["job_name"] == "dli-exporter"}
    assert {ds["jsonData"]["timeInterval"] for ds in datasource["datasources"]} == shipped == {"60s"}


def _with_timestamps(scrapes: list[str], step: float, labels: str) -> str:
    """OpenMetrics scrapes merged into one backfill file: each series' samples in time order,
    ``step`` seconds apart up to now, with the target labels Prometheus would have added."""
    now = time.time()
    families: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for i, text in enumerate(scrapes):
        stamp = f"{now - (len(scrapes) - 1 - i) * step:.3f}"
        header: list[str] = []
        for line in text.splitlines():
            if line.startswith("# HELP"):
                header = [line]
            elif line.startswith("# TYPE"):
                header.append(line)
                families.setdefault(line.split()[2], (header, {}))
                current = families[line.split()[2]][1]
            elif line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                name, brace, rest = series.partition("{")
                series = f"{name}{{{labels}," + rest if brace else f"{name}{{{labels}}}"
                current.setdefault(series, []).append(f"{series} {value} {stamp}")
    out = [line for header, series in families.values() for line in [*header, *(s for v in series.values() for s in v)]]
    return "\n".join([*out, "# EOF", ""])


@pytest.mark.e2e
def test_every_dashboard_query_returns_data_at_the_shipped_scrape_interval(stack: Stack, tmp_path: Path) -> None:
    """The same queries on samples 60 s apart (the shipped interval), backfilled into a Prometheus
    of their own, with Grafana's $__rate_interval for a 60 s datasource interval (4 x 60 s)."""
    scrapes = []
    for _ in range(4):
        resp = requests.get(f"http://127.0.0.1:{stack.exporter_port}/metrics", timeout=10,
                            headers={"Accept": "application/openmetrics-text;version=1.0.0"})
        scrapes.append(resp.text)
        time.sleep(1.1)
    source = tmp_path / "scrapes.om"
    source.write_text(_with_timestamps(scrapes, 60.0, 'job="dli-exporter",instance="dli-exporter:9822"'))
    data = tmp_path / "tsdb"
    created = run(tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data))
    assert created.returncode == 0, created.stdout + created.stderr
    port = free_port()

    def serve() -> subprocess.Popen[bytes]:
        started = subprocess.Popen([tool("prometheus"), f"--config.file={tmp_path / 'empty.yml'}",
                                    f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        _wait_for(f"http://127.0.0.1:{port}/-/ready")
        return started

    (tmp_path / "empty.yml").write_text("global: {}\n")  # no scrapes, no rules: the backfilled data alone
    proc = serve()
    try:
        # The recording rules the panels read, evaluated every 60 s over the same span, backfilled
        # tier by tier: a rule whose inputs are other rules' series waits for theirs.
        recorded: set[str] = set()
        pending = [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"] if "record" in r]
        while pending:
            tier = [r for r in pending if not set(re.findall(r"dli:[a-z_:0-9]+", r["expr"])) - recorded - {r["record"]}]
            assert tier, f"recording rules that depend on each other in a circle: {[r['record'] for r in pending]}"
            (tmp_path / "tier.yml").write_text(yaml.safe_dump({"groups": [{"name": "tier", "rules": tier}]}))
            now = int(time.time())
            filled = run(tool("promtool"), "tsdb", "create-blocks-from", "rules", f"--start={now - 300}",
                         f"--end={now}", "--eval-interval=60s", f"--url=http://127.0.0.1:{port}",
                         f"--output-dir={tmp_path / 'recorded'}", str(tmp_path / "tier.yml"), cwd=tmp_path)
            assert filled.returncode == 0, filled.stdout + filled.stderr
            proc.terminate()
            proc.wait(timeout=10)
            for block in (tmp_path / "recorded").iterdir():
                shutil.move(str(block), data / block.name)
            proc = serve()
            recorded |= {r["record"] for r in tier}
            pending = [r for r in pending if r["record"] not in recorded]

        def result(query: str) -> list[Any]:
            query = (query.replace("$project", ".*").replace("$queue", ".*").replace("$__rate_interval", "240s")
                     .replace("$__range", "5m").replace("$__interval", "60s"))
            body = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10).json()
            assert body["status"] == "success", (query, body)
            return list(body["data"]["result"])

        empty = [(title, expr) for title, expr in _dashboard_queries() if title not in OPTIONAL
                 and "up{" not in expr and not result(expr) and not result(_relaxed(title, expr))]
        assert not empty, f"panels without data at a 60 s scrape interval: {empty}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.e2e
def test_inhibition_silences_what_the_example_configuration_says(stack: Stack) -> None:
    """In the real Alertmanager: an unreadable project silences its own job alerts and not
    another project's; no exporter at all silences every other DLI alert."""
    from datetime import UTC, datetime, timedelta

    ends = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()

    def post(*alerts: dict[str, str]) -> None:
        body = [{"labels": labels, "annotations": {"summary": "test"}, "endsAt": ends} for labels in alerts]
        resp = requests.post(f"http://127.0.0.1:{stack.am_port}/api/v2/alerts", json=body, timeout=5)
        assert resp.status_code == 200, resp.text

    def notified() -> set[tuple[str, str]]:
        return {(a["labels"]["alertname"], a["labels"].get("project_id", "")) for p in stack.received
                for a in p["alerts"] if a["labels"].get("project_id", "").startswith("inh-")
                or a["labels"].get("instance") == "inh-exporter"}

    post({"alertname": "DliProjectUnreadable", "severity": "critical", "project_id": "inh-1"})
    time.sleep(1)  # the inhibiting alert first, as Prometheus would have sent it
    post({"alertname": "DliJobRunningException", "severity": "critical", "project_id": "inh-1", "job_id": "1"},
         {"alertname": "DliJobRunningException", "severity": "critical", "project_id": "inh-2", "job_id": "2"})
    time.sleep(4)
    assert notified() == {("DliProjectUnreadable", "inh-1"), ("DliJobRunningException", "inh-2")}

    post({"alertname": "DliExporterDown", "severity": "critical", "instance": "inh-exporter"})
    time.sleep(1)
    post({"alertname": "DliProjectArrears", "severity": "critical", "project_id": "inh-3"},
         {"alertname": "DliProjectUnreadable", "severity": "critical", "project_id": "inh-4"})
    time.sleep(4)
    assert notified() == {("DliProjectUnreadable", "inh-1"), ("DliJobRunningException", "inh-2"),
                          ("DliExporterDown", "")}

    # Another deployment (cluster b) of a shared Alertmanager: the exporter outage of cluster a
    # does not mute it, and a rejected key there mutes its own unreadable projects only.
    post({"alertname": "DliExporterDown", "severity": "critical", "cluster": "a", "instance": "inh-exporter"},
         {"alertname": "DliCredentialRejected", "severity": "critical", "cluster": "b", "credential": "HPUA..."})
    time.sleep(1)
    post({"alertname": "DliJobRunningException", "severity": "critical", "cluster": "a", "project_id": "inh-5"},
         {"alertname": "DliJobRunningException", "severity": "critical", "cluster": "b", "project_id": "inh-6"},
         {"alertname": "DliProjectUnreadable", "severity": "critical", "cluster": "b", "project_id": "inh-7"})
    time.sleep(4)
    assert ("DliJobRunningException", "inh-6") in notified()
    assert ("DliJobRunningException", "inh-5") not in notified() and ("DliProjectUnreadable", "inh-7") not in notified()


@pytest.mark.parametrize("name", ["probe-sharded.yml", "discovery-sharded.yml"])
def test_the_sharded_examples_are_valid(name: str) -> None:
    result = run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / name))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["prometheus.yml", "probe.yml", "probe-sharded.yml", "discovery-sharded.yml"])
def test_every_example_loads_the_rules_and_sends_alerts(name: str) -> None:
    """Rules that nobody receives page nobody: each example loads them and has an Alertmanager."""
    config = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
    assert config["rule_files"] == ["dli-exporter.rules.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def _shards(targets: list[str], modulus: int = 2) -> list[set[str]]:
    """Prometheus' hashmod of each target (the MD5 of the value, its last 8 bytes big-endian,
    modulo): which server of ``modulus`` keeps it."""
    held: list[set[str]] = [set() for _ in range(modulus)]
    for target in targets:
        held[int.from_bytes(hashlib.md5(target.encode()).digest()[8:], "big") % modulus].add(target)  # noqa: S324
    return held


def _two_shards(tmp_path: Path, example: str, address: str, targets: list[str] | None = None,
                wanted: int = 2) -> list[set[str]]:
    """The projects each of two real Prometheus servers running the sharded ``example`` (shard 0
    and 1, scraping every second) holds with dli_up 1, once each has ``wanted`` of them."""
    configs = {}
    for shard in ("0", "1"):
        config = yaml.safe_load((DEPLOY / "prometheus" / example).read_text())
        config.pop("rule_files")
        config.pop("alerting")
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        job = config["scrape_configs"][0]
        job.update(scrape_interval="1s", scrape_timeout="1s")
        if targets is not None:
            job["static_configs"][0]["targets"] = targets
        for sd in job.get("http_sd_configs", []):
            sd.update(url=f"http://{address}/discovery", refresh_interval="1s")
        for rule in job["relabel_configs"]:
            if rule.get("action") == "keep":
                rule["regex"] = shard
            if rule.get("target_label") == "__address__":
                rule["replacement"] = address
        configs[f"shard{shard}"] = config
    held: list[set[str]] = []
    with _prometheus_servers(tmp_path, configs) as urls:
        for url in urls:
            found: set[str] = set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(found) < wanted:
                body = requests.get(f"{url}/api/v1/query", params={"query": "dli_up == 1"}, timeout=5).json()
                found = {r["metric"]["project_id"] for r in body["data"]["result"]}
                time.sleep(0.5)
            held.append(found)
    return held


@pytest.mark.e2e
def test_two_prometheus_servers_shard_the_discovered_projects_between_them(tmp_path: Path) -> None:
    """discovery-sharded.yml as two real Prometheus servers: nobody lists a project, the exporter's
    /discovery finds the account's four readable projects (in two regions, one a sub-project; one
    refused and one disabled project left out), each server probes only its share, and together
    they hold every readable project exactly once, each read at its region's endpoint."""
    from exporter.simulator import Account, Simulator, project
    from tests.helpers import jobs, running_exporter, settings_for

    names = {"a" * 32: "cn-north-4", "b" * 32: "cn-north-4_analytics", "c" * 32: "ap-southeast-1",
             "e" * 32: "ap-southeast-1_ops", "f" * 32: "la-south-2", "0" * 32: "cn-east-3"}
    regions = {pid: name.split("_")[0] for pid, name in names.items()}
    account = Account([project(pid, name, enabled=pid != "0" * 32) for pid, name in names.items()])
    data = {pid: jobs(3, start=1000 * i) for i, pid in enumerate(names)}
    with Simulator(data, regions=regions, account=account, denied={"f" * 32}) as sim, \
            running_exporter(settings_for(sim, project_ids="", discovery="auto",
                                          endpoint=sim.url + "/{region}")) as exporter:
        held = _two_shards(tmp_path, "discovery-sharded.yml", exporter.url.removeprefix("http://"))
        regions_read = {r.region for r in sim.recorded("/") if r.path.endswith("/streaming/jobs")}
    assert held == _shards(["a" * 32, "b" * 32, "c" * 32, "e" * 32]), held  # each its share, all of it
    assert regions_read == {"cn-north-4", "ap-southeast-1", "la-south-2"}  # la-south-2: the readability check


@pytest.mark.e2e
def test_two_prometheus_servers_shard_the_projects_between_them(tmp_path: Path) -> None:
    """The sharded example as two real Prometheus servers probing four simulated projects: each
    scrapes only its share, and together they hold every project exactly once."""
    from exporter.simulator import Simulator
    from tests.helpers import jobs, running_exporter, settings_for

    projects = [c * 32 for c in "abce"]  # their hashes fall two in each shard
    with Simulator({pid: jobs(3, start=1000 * i) for i, pid in enumerate(projects)}) as sim, \
            running_exporter(settings_for(sim, project_ids="")) as exporter:
        held = _two_shards(tmp_path, "probe-sharded.yml", exporter.url.removeprefix("http://"), projects)
    assert held == _shards(projects), held


@pytest.mark.e2e
def test_dashboard_and_rules_work_on_probed_series(tmp_path: Path) -> None:
    """The example probe configuration as it is (the exporter's /metrics for its own series, /probe
    for the projects) against a probe-only exporter of the demo's data in two regions: every
    dashboard query has data, and the rules fire on the demo's failing job."""
    from exporter.simulator import DEMO_REGIONS, Simulator, demo_projects
    from tests.helpers import running_exporter, settings_for

    with Simulator(demo_projects(), regions=DEMO_REGIONS) as sim, \
            running_exporter(settings_for(sim, project_ids="", endpoint=sim.url + "/{region}")) as exporter:
        address = exporter.url.removeprefix("http://")
        config = yaml.safe_load((DEPLOY / "prometheus" / "probe.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config.pop("alerting", None)
        for job in config["scrape_configs"]:
            job.update(scrape_interval="1s", scrape_timeout="1s")
            if job["job_name"] == "dli-exporter":
                job["static_configs"][0]["targets"] = [address]
            else:
                job["static_configs"][0]["targets"] = [f"{region}:{pid}" for pid, region in DEMO_REGIONS.items()]
                for rule in job["relabel_configs"]:
                    if rule.get("target_label") == "__address__":
                        rule["replacement"] = address
        rules = yaml.safe_load(RULES.read_text())
        for rule in alerts_of(rules):
            rule["for"] = "0s"
        (tmp_path / "dli-exporter.rules.yml").write_text(yaml.safe_dump(rules))
        with _prometheus_servers(tmp_path, {"prometheus": config}) as [url]:

            def query(expr: str) -> list[Any]:
                body = requests.get(f"{url}/api/v1/query", params={"query": _substitute(expr)}, timeout=10).json()
                assert body["status"] == "success", (expr, body)
                return list(body["data"]["result"])

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not query("count(count_over_time(dli_up[1m]) >= 5) >= 2"):
                time.sleep(1)
            # The job series come from /probe alone: the exporter has no project of its own.
            assert {r["metric"]["job"] for r in query("dli_job_info")} == {"dli-probe"}
            empty = [(title, expr) for title, expr in _dashboard_queries()
                     if not query(expr) and not query(_relaxed(title, expr))]
            assert not empty, f"panels without data: {empty}"
            firing = query('ALERTS{alertname="DliJobRunningException", alertstate="firing"}')
            assert any(a["metric"].get("name") == "payments-fraud-detect" for a in firing), firing
            assert all("instance" not in a["metric"] for a in firing)
            assert {r["metric"]["region"] for r in query("dli_project_info")} == set(DEMO_REGIONS.values())


@pytest.mark.e2e
def test_two_replicas_show_on_the_dashboard_as_one(tmp_path: Path) -> None:
    """The same demo data through one exporter replica (one Prometheus) and through two (another
    Prometheus scraping both): every panel query gives the same series and the same values, but
    for the panels about the replicas themselves, which say so in their titles."""
    from exporter.simulator import DEMO_REGIONS, Simulator, demo_projects, demo_queues
    from tests.helpers import running_exporter, settings_for

    projects = demo_projects()
    listed = ",".join(f"{DEMO_REGIONS[pid]}:{pid}" for pid in projects)
    with Simulator(projects, regions=DEMO_REGIONS, queues=demo_queues(projects)) as sim, \
            running_exporter(settings_for(sim, project_ids=listed, endpoint=sim.url + "/{region}")) as one, \
            running_exporter(settings_for(sim, project_ids=listed, endpoint=sim.url + "/{region}")) as two:
        (tmp_path / "rules.yml").write_text(RULES.read_text())
        configs = {name: {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": ["rules.yml"],
                          "scrape_configs": [{"job_name": "dli-exporter", "scrape_timeout": "1s", "static_configs": [
                              {"targets": [t.url.removeprefix("http://") for t in targets]}]}]}
                   for name, targets in (("single", [one]), ("pair", [one, two]))}
        with _prometheus_servers(tmp_path, configs) as servers:
            at = time.time() + 20

            def query(url: str, expr: str) -> dict[frozenset[tuple[str, str]], float]:
                body = requests.get(f"{url}/api/v1/query", params={"query": _substitute(expr), "time": f"{at:.3f}"},
                                    timeout=10).json()
                assert body["status"] == "success", (expr, body)
                return {frozenset(r["metric"].items()): float(r["value"][1]) for r in body["data"]["result"]}

            time.sleep(max(0.0, at - time.time()) + 2)  # 20 s of scrapes and evaluations in both
            compared, differ = 0, []
            # The comparison, printed for the reader (pytest -s): series, and the sum of their values.
            print(f"\n{'panel query (* about the replicas)':70} {'one replica':>20} {'two replicas':>20}")
            for title, expr in _dashboard_queries():
                single, pair = query(servers[0], expr), query(servers[1], expr)
                about_replicas = "replica" in title or "up{" in expr
                print(f"{title[:66] + ('*' if about_replicas else ''):70} "
                      f"{len(single):>6} = {sum(single.values()):>11.6g} {len(pair):>6} = {sum(pair.values()):>11.6g}")
                if about_replicas:
                    continue  # about the replicas themselves: rightly different
                # Ages are read from each replica's own sweeps: a second apart at most.
                same = single.keys() == pair.keys() and all(
                    pair[key] == pytest.approx(value, abs=2.0 if "time()" in expr else 1e-9)
                    for key, value in single.items())
                if not same:
                    differ.append(title)
                compared += bool(single)
    assert not differ, f"panels that two replicas change: {differ}"
    assert compared >= 20
