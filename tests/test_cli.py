"""The dli-exporter command as a user runs it: exit codes, one-line errors, the demo, signals."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import DEMO_AK, DEMO_SK, JOB_TYPES, STATUSES, Fault, Simulator
from tests.helpers import COMMAND, clean_environ, free_port, jobs


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], env=clean_environ(env), capture_output=True, text=True, timeout=timeout,
                          check=False)


GOOD = {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "very-secret-sk-value",
        "DLI_EXPORTER_REGION": "cn-north-4", "DLI_EXPORTER_PROJECT_IDS": "p1"}


@pytest.mark.parametrize(("env", "setting"), [
    ({**GOOD, "DLI_EXPORTER_CACHE_SECONDS": "soon"}, "DLI_EXPORTER_CACHE_SECONDS"),
    ({**GOOD, "DLI_EXPORTER_CONCURRENCY": "50"}, "DLI_EXPORTER_CONCURRENCY"),
    ({**GOOD, "DLI_EXPORTER_LISTEN_ADDRESS": "nowhere"}, "DLI_EXPORTER_LISTEN_ADDRESS"),
    ({**GOOD, "DLI_EXPORTER_SHOW_DETAIL": "perhaps"}, "DLI_EXPORTER_SHOW_DETAIL"),
    ({**GOOD, "DLI_EXPORTER_REGION": "Not A Region"}, "DLI_EXPORTER_REGION"),
    ({**GOOD, "DLI_EXPORTER_ENDPOINT": "dli.example.com"}, "DLI_EXPORTER_ENDPOINT"),
    ({**GOOD, "DLI_EXPORTER_PROJECT_IDS": "cn-north-4:p1:x"}, "DLI_EXPORTER_PROJECT_IDS"),
    ({k: v for k, v in GOOD.items() if k != "DLI_EXPORTER_REGION"}, "DLI_EXPORTER_REGION"),
    ({k: v for k, v in GOOD.items() if not k.startswith("HUAWEICLOUD")}, "HUAWEICLOUD_SDK_AK"),
    ({k: v for k, v in GOOD.items() if k != "HUAWEICLOUD_SDK_SK"}, "HUAWEICLOUD_SDK_SK"),
    ({**GOOD, "DLI_EXPORTER_IAM_USERNAME": "monitor"}, "DLI_EXPORTER_IAM_PASSWORD"),
])
def test_a_bad_setting_exits_2_with_one_line_naming_it(env: dict[str, str], setting: str) -> None:
    result = run([], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "very-secret-sk-value" not in result.stderr


def test_a_bad_flag_exits_2() -> None:
    assert run(["--no-such-flag"]).returncode == 2


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0 and result.stdout.startswith("dli-exporter ")


def test_a_busy_port_exits_2_naming_the_setting() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run([], {**GOOD, "DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"})
    assert result.returncode == 2 and "DLI_EXPORTER_LISTEN_ADDRESS" in result.stderr
    assert "Traceback" not in result.stderr
    # The address is taken, not invalid: the message says so, on one line.
    assert result.stderr.strip() == (f"dli-exporter: cannot listen on 127.0.0.1:{port}: Address already in use "
                                     "(DLI_EXPORTER_LISTEN_ADDRESS)")


@pytest.fixture
def launch() -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        proc = subprocess.Popen([COMMAND, *args, "--listen-address", f"127.0.0.1:{port}"], env=clean_environ(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    return proc, url
            except requests.ConnectionError:
                time.sleep(0.05)
            if proc.poll() is not None:
                break
        raise AssertionError(f"exporter did not start: {proc.communicate(timeout=5)}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, float]:
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err, time.monotonic() - started


def test_demo_serves_a_realistic_fleet(launch: Callable[..., tuple[subprocess.Popen[str], str]],
                                       promtool: Callable[[bytes], subprocess.CompletedProcess[bytes]]) -> None:
    proc, url = launch(["--demo"])
    body = requests.get(url + "/metrics", timeout=10).content
    checked = promtool(body)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    info = families["dli_job_info"].samples
    assert len(info) >= 60
    assert {s.labels["job_type"] for s in info} == set(JOB_TYPES)  # edge jobs too
    assert {s.labels["run_mode"] for s in info} == {"shared_cluster", "exclusive_cluster", "edge_node"}
    # The demo's API answers as documented (each view lacks fields), and the views are merged:
    # every job has its run mode (detail view only) and its user (summary view only).
    assert all(s.labels["run_mode"] and s.labels["user_name"] for s in info)
    assert len({s.labels["queue"] for s in info}) >= 3
    statuses = {s.labels["status"] for s in families["dli_job_status"].samples}
    assert statuses == set(STATUSES)  # all fourteen
    assert all(s.value == 1 for s in families["dli_up"].samples) and len(families["dli_up"].samples) == 3
    # None configured: the account's three readable projects found by discovery, the fourth refused.
    assert {(s.labels["name"], s.labels["source"]) for s in families["dli_project_info"].samples} == {
        ("cn-north-4", "discovered"), ("ap-southeast-1", "discovered"), ("cn-north-4_analytics", "discovered")}
    assert {s.labels["state"]: s.value for s in families["dli_discovered_projects"].samples} == {
        "readable": 3, "unreadable": 1}
    jobs = {s.labels["job_id"] for s in info}
    for name in ("dli_job_duration_seconds", "dli_job_compute_units", "dli_job_manager_compute_units"):
        assert {s.labels["job_id"] for s in families[name].samples} == jobs, name
    # What real answers hold now and then, each losing one field of one job and said so: a v2 job
    # without resource_config (no parallelism), a has_savepoint of "unknown".
    assert len(jobs - {s.labels["job_id"] for s in families["dli_job_parallelism"].samples}) == 1
    assert len(jobs - {s.labels["job_id"] for s in families["dli_job_has_savepoint"].samples}) == 1
    assert {s.labels["field"] for s in families["dli_api_field_errors"].samples if s.name.endswith("_total")} == {
        "job.job_config.resource_config", "job.has_savepoint"}
    # DLI's reasons for the troubled jobs, Flink versions and custom images.
    described = {s.labels["job_id"] for s in families["dli_job_status_description_info"].samples}
    troubled = {s.labels["job_id"] for s in families["dli_job_status"].samples
                if s.labels["status"] in ("job_submit_fail", "job_running_exception")}
    assert troubled and troubled <= described
    assert {"custom", "1.15"} <= {s.labels["flink_version"] for s in info}
    assert len(families["dli_detail_last_success_timestamp_seconds"].samples) == 3
    code, err, took = _stop(proc, signal.SIGTERM)
    assert code == 0 and took < 5
    assert "Traceback" not in err and "msg=listening" in err and "msg=\"shutting down\"" in err


def test_sigint_exits_0(launch: Callable[..., tuple[subprocess.Popen[str], str]]) -> None:
    proc, _ = launch(["--demo"])
    code, err, took = _stop(proc, signal.SIGINT)
    assert code == 0 and took < 5 and "Traceback" not in err


def test_against_an_api_with_credentials_from_the_environment(
        launch: Callable[..., tuple[subprocess.Popen[str], str]]) -> None:
    with Simulator({"proj-a": jobs(130)}) as sim:
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
               "HUAWEICLOUD_SDK_PROJECT_ID": "proj-a", "DLI_EXPORTER_LOG_LEVEL": "debug",
               "DLI_EXPORTER_TYPO_SETTING": "1"}
        proc, url = launch([], env)
        body = requests.get(url + "/metrics", timeout=10).text
        code, err, _ = _stop(proc, signal.SIGTERM)
    assert 'dli_up{project_id="proj-a"} 1.0' in body
    assert body.count("dli_job_info{") == 130
    assert code == 0
    assert "DLI_EXPORTER_TYPO_SETTING" in err  # an unknown setting is reported
    assert DEMO_SK not in err and DEMO_SK not in body


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_sweep_exits_0_within_5_seconds(
        launch: Callable[..., tuple[subprocess.Popen[str], str]], sig: int) -> None:
    """A page call hangs for 30 s with 60 s of timeouts allowed: the exit must not wait for it."""
    with Simulator({"proj-a": jobs(3)}) as sim:
        sim.add_fault(Fault("hang", seconds=30))
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
               "HUAWEICLOUD_SDK_PROJECT_ID": "proj-a", "DLI_EXPORTER_REQUEST_TIMEOUT_SECONDS": "60",
               "DLI_EXPORTER_SCRAPE_TIMEOUT_SECONDS": "60"}
        proc, url = launch([], env)
        scrape = threading.Thread(target=_scrape_quietly, args=(url,), daemon=True)
        scrape.start()
        deadline = time.monotonic() + 10
        while not sim.recorded() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sim.recorded(), "the sweep did not start"
        code, err, took = _stop(proc, sig)
    assert code == 0, err
    assert took < 5, f"took {took:.1f}s to exit"
    assert "Traceback" not in err


def _scrape_quietly(url: str) -> None:
    with contextlib.suppress(requests.RequestException):  # the exporter goes away mid-scrape, as intended
        requests.get(url + "/metrics", timeout=30)


def test_json_logs_on_request_one_object_per_line(
        launch: Callable[..., tuple[subprocess.Popen[str], str]]) -> None:
    import json

    with Simulator({"proj-a": jobs(3)}) as sim:
        sim.add_fault(Fault("bad_signature"))
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
               "HUAWEICLOUD_SDK_PROJECT_ID": "proj-a", "DLI_EXPORTER_LOG_FORMAT": "json"}
        proc, url = launch([], env)
        requests.get(url + "/metrics", timeout=10)
        code, err, _ = _stop(proc, signal.SIGTERM)
        rid = next(r.request_id for r in sim.recorded() if r.status == 401)
    events = [json.loads(line) for line in err.splitlines()]
    # One failed call (the credential is then held back), one line saying so and when it is tried again.
    assert code == 0 and [e["msg"] for e in events] == [
        "listening", "authentication failed: holding the credential back", "shutting down"]
    failed = events[1]
    assert failed["level"] == "warning" and failed["project_id"] == "proj-a" and failed["request_id"] == rid
    assert failed["status"] == 401 and failed["error_code"] == "APIGW.0301" and failed["retry_in"] == 60
    assert failed["error"].startswith("authentication failed: HTTP 401 APIGW.0301")


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, "--check", *args], env=clean_environ(env), capture_output=True, text=True,
                          timeout=60, check=False)


def test_check_prints_a_table_per_project_and_exits_0() -> None:
    done = _check({}, "--demo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # What the look-up found, each project with its id and name, read, refused or left out and why.
    assert lines[0].startswith("discovery  IAM http://127.0.0.1:")
    assert lines[0].endswith("projects found 7: read 3, refused 1, left out 3")
    assert [line.split()[:2] for line in lines[1:8]] == [
        ["read", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"], ["read", "f0e1d2c3b4a5968778695a4b3c2d1e0f"],
        ["read", "5a6b7c8d9e0f11223344556677889900"], ["refused", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"],
        ["left", "out"], ["left", "out"], ["left", "out"]]
    assert lines[5].endswith("MOS: not a region's project") and lines[6].endswith("cn-east-3: disabled")
    assert lines[7].endswith("cn-north-7: DLI is not offered in cn-north-7")
    lines = lines[8:]
    # Then each project read: in two regions, each at its region's endpoint, and a sub-project.
    assert len(lines) == 21
    assert lines[0].startswith("project 0a1b2c3d4e5f60718293a4b5c6d7e8f9  region cn-north-4  name cn-north-4  "
                               "endpoint http://127.0.0.1:")
    assert lines[0].endswith("/cn-north-4  auth AK/SK (DEMO...)")
    assert lines[7].startswith("project f0e1d2c3b4a5968778695a4b3c2d1e0f  region ap-southeast-1  name ap-southeast-1  ")
    assert lines[7].endswith("/ap-southeast-1  auth AK/SK (DEMO...)")
    assert lines[14].startswith("project 5a6b7c8d9e0f11223344556677889900  region cn-north-4  "
                                "name cn-north-4_analytics  ")
    assert lines[1].split() == ["list", "result", "count", "pages", "seconds"]
    assert lines[2].split()[:4] == ["jobs", "ok", "48", "1"]
    assert lines[3].split()[:5] == ["jobs", "detail", "ok", "48", "1"]
    assert lines[4].split()[:4] == ["queues", "ok", "4", "1"]
    assert lines[5].strip() == "jobs without run_mode: 0   without queue: 0"
    # The queues line: how many, how many general (Flink's), their CUs and how many are in use.
    assert re.fullmatch(r"  queues: 4 \(3 general\), \d+ CUs, \d+ in use", lines[6]), lines[6]


def test_check_tells_a_refused_key_with_its_request_id_and_exits_1() -> None:
    with Simulator({"proj-a": jobs(3), "proj-b": jobs(2, start=10)}) as sim:
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": "a-wrong-key", "DLI_EXPORTER_ENDPOINT": sim.url,
               "DLI_EXPORTER_PROJECT_IDS": "proj-a,proj-b", "DLI_EXPORTER_LOG_LEVEL": "error"}
        done = _check(env)
        [refused] = sim.recorded()  # one call: the key is then held back for the other reads
    assert done.returncode == 1
    errors = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("error")]
    assert errors[0] == ("error (jobs): authentication failed: HTTP 401 APIGW.0301: Incorrect IAM authentication "
                         f"information: verify aksk signature fail. (request_id={refused.request_id})")
    # Every other read of both projects: not sent, the key is held back.
    assert [e.split(":")[0] for e in errors[1:]] == ["error (jobs detail)", "error (queues)", "error (jobs)",
                                                     "error (jobs detail)", "error (queues)"]
    assert all(": not sent: the credential is held back" in e for e in errors[1:])
    assert "a-wrong-key" not in done.stdout + done.stderr


def test_check_names_the_host_that_refused_the_connection() -> None:
    port = free_port()
    env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK,
           "DLI_EXPORTER_ENDPOINT": f"http://127.0.0.1:{port}", "DLI_EXPORTER_PROJECT_IDS": "proj-a",
           "DLI_EXPORTER_RETRIES": "0", "DLI_EXPORTER_LOG_LEVEL": "error"}
    done = _check(env)
    assert done.returncode == 1
    assert f"  error (jobs): connection to 127.0.0.1:{port} refused" in done.stdout.splitlines()


def test_an_unknown_job_type_starts_with_a_warning_naming_the_known_ones() -> None:
    """The filter is passed on as it is (the API may know a type the documentation does not yet);
    this simulator, like today's API, refuses it, and --check shows the API's words."""
    with Simulator({"proj-a": jobs(3)}) as sim:
        env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
               "DLI_EXPORTER_PROJECT_IDS": "proj-a", "DLI_EXPORTER_JOB_TYPE": "flink_python_job",
               "DLI_EXPORTER_RETRIES": "0"}
        done = _check(env)
        sent = [r.query.get("job_type") for r in sim.recorded() if r.path.endswith("/streaming/jobs")]
    [warning] = [line for line in done.stderr.splitlines() if "level=warning" in line and "JOB_TYPE" in line]
    assert "DLI_EXPORTER_JOB_TYPE is none of the job types DLI documents" in warning
    assert 'job_type=flink_python_job' in warning
    assert 'known=flink_sql_job,flink_opensource_sql_job,flink_sql_edge_job,flink_jar_job' in warning
    assert sent and set(sent) == {"flink_python_job"}
    assert any(line.startswith("  error (jobs): HTTP 400 DLI.0001: Parameter job_type is invalid. (request_id=")
               for line in done.stdout.splitlines()), done.stdout


def test_the_detail_view_flag_goes_both_ways() -> None:
    from exporter.cli import _parser

    assert _parser().parse_args(["--no-show-detail"]).show_detail is False
    assert _parser().parse_args(["--show-detail"]).show_detail is True
    assert _parser().parse_args([]).show_detail is None  # the environment (or the default, true) decides


def test_without_projects_it_serves_probe_only_and_says_so(
        launch: Callable[..., tuple[subprocess.Popen[str], str]]) -> None:
    env = {"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_REGION": "cn-north-4",
           "DLI_EXPORTER_DISCOVERY": "off"}
    proc, url = launch([], env)
    body = requests.get(url + "/metrics", timeout=10).text
    bad = requests.get(url + "/probe?target=nope", timeout=10)
    code, err, _ = _stop(proc, signal.SIGTERM)
    assert code == 0 and "dli_exporter_build_info{" in body and "\ndli_up{" not in body  # no project: no sample
    assert bad.status_code == 400
    [warning] = [line for line in err.splitlines() if "level=warning" in line]
    assert 'msg="no project configured (DLI_EXPORTER_PROJECT_IDS) and discovery off:' in warning
