"""Every Prometheus Operator object the project ships, against the operator's own CRD schemas with
unknown fields made errors (tests/operator_schema.py), and broken copies of them rejected, so the
check can fail. kubernetes-validate has no schema for these kinds: it warns and passes anything."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import relabel
from tests.test_deploy import DEPLOY, tool

K8S = DEPLOY / "kubernetes"
GROUP = "monitoring.coreos.com/"


def validate(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.operator_schema", "-"], input=text, capture_output=True,
                          text=True, timeout=120, check=False, cwd=Path(__file__).resolve().parents[1])


def shipped_files() -> list[Path]:
    """Every YAML file under deploy/ holding an operator object (the base and the examples)."""
    return sorted(path for path in DEPLOY.rglob("*.y*ml")
                  if any(isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(GROUP)
                         for doc in yaml.safe_load_all(path.read_text())))


def shipped(kind: str, name: str | None = None) -> dict[str, Any]:
    for path in shipped_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind and name in (None, doc["metadata"]["name"]):
                return doc
    raise AssertionError(f"no {kind} {name or ''} shipped")


def test_every_operator_object_shipped_passes_the_operators_schema_strictly() -> None:
    files = shipped_files()
    kinds = {doc["kind"] for path in files for doc in yaml.safe_load_all(path.read_text())}
    assert {"PrometheusRule", "ServiceMonitor", "ScrapeConfig"} <= kinds, kinds
    result = validate("\n---\n".join(path.read_text() for path in files))
    assert result.returncode == 0, result.stdout + result.stderr
    objects = sum(1 for path in files for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict))
    assert f"{objects} monitoring.coreos.com objects, 0 invalid" in result.stdout


def test_the_kustomize_build_passes_the_operators_schema_strictly() -> None:
    built = subprocess.run([tool("kubectl"), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60,
                           check=True).stdout
    result = validate(built)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 monitoring.coreos.com objects, 0 invalid" in result.stdout


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = broken
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return broken


def _rename(doc: dict[str, Any], path: str, new: str) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = broken
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[new] = node.pop(last)
    return broken


BROKEN = {
    "a number for a duration": ("ServiceMonitor", lambda d: _set(d, "spec.endpoints.0.interval", 30),
                                "spec.endpoints.0.interval"),
    "a misspelt field": ("ScrapeConfig", lambda d: _rename(d, "spec.scrapeInterval", "scrapeIntervall"),
                         "spec.scrapeIntervall"),
    "prose for a duration": ("PrometheusRule", lambda d: _set(d, "spec.groups.0.rules.0.for", "five minutes"),
                             "spec.groups.0.rules.0.for"),
    "a misspelt relabel field": ("ScrapeConfig", lambda d: _rename(d, "spec.relabelings.0.targetLabel",
                                                                   "target_label"), "target_label"),
}


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_a_broken_object_is_rejected(defect: str) -> None:
    kind, breaking, where = BROKEN[defect]
    result = validate(yaml.safe_dump(breaking(shipped(kind))))
    assert result.returncode == 1, result.stdout
    assert "1 invalid" in result.stdout and where in result.stdout, result.stdout


def test_the_scrapeconfig_relabels_as_the_plain_prometheus_example() -> None:
    """The operator's example and deploy/prometheus/probe.yml do the same thing to the same targets."""
    plain = {job["job_name"]: job for job in
             yaml.safe_load((DEPLOY / "prometheus" / "probe.yml").read_text())["scrape_configs"]}["dli-probe"]
    spec = shipped("ScrapeConfig", "dli-probe")["spec"]
    assert spec["metricsPath"] == plain["metrics_path"] == "/probe"
    assert spec["staticConfigs"][0]["targets"] == plain["static_configs"][0]["targets"]
    for address in spec["staticConfigs"][0]["targets"]:
        ours = relabel(spec["relabelings"], {"__address__": address})
        theirs = relabel(plain["relabel_configs"], {"__address__": address})
        assert ours["__address__"] == "dli-exporter.monitoring.svc:9822"
        assert {k: v for k, v in ours.items() if k != "__address__"} == \
            {k: v for k, v in theirs.items() if k != "__address__"}
        assert ours["__param_target"] == address.rsplit(":", 1)[-1] == ours["instance"]


def test_the_discovered_scrapeconfig_relabels_as_the_plain_prometheus_example() -> None:
    """Both ask /discovery and probe each project it lists, the same labels on the same targets
    (the plain example keeps one shard of them; the operator shards by itself)."""
    plain = yaml.safe_load((DEPLOY / "prometheus" / "discovery-sharded.yml").read_text())["scrape_configs"][0]
    spec = shipped("ScrapeConfig", "dli-discovered")["spec"]
    assert spec["httpSDConfigs"][0]["url"].endswith("/discovery") and plain["http_sd_configs"][0]["url"].endswith(
        "/discovery")
    unsharded = [r for r in plain["relabel_configs"] if r.get("action") not in ("hashmod", "keep")]
    found = {"__address__": "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "__meta_dli_region": "cn-north-4",
             "__meta_dli_project_name": "cn-north-4", "__param_region": "cn-north-4"}
    ours, theirs = relabel(spec["relabelings"], found), relabel(unsharded, found)
    assert ours["__address__"] == "dli-exporter.monitoring.svc:9822" and theirs["__address__"] == "dli-exporter:9822"
    assert {k: v for k, v in ours.items() if k != "__address__"} == {k: v for k, v in theirs.items()
                                                                     if k != "__address__"}
    assert ours["__param_target"] == ours["instance"] == found["__address__"] and ours["__param_region"] == "cn-north-4"
