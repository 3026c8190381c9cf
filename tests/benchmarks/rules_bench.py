"""Rule evaluation time at 10,000 jobs on the real Prometheus (part of `make bench`).

The simulator (10,000 jobs, their statuses spread as the demo's), the exporter (both views,
per-job series) and Prometheus with a rules file, scraping and evaluating every 10 s: after 5
minutes every series holds 30 samples, what a 30-minute window holds at the shipped 60 s
scrape interval, so range selectors and subqueries over ``[30m]`` cost here what they cost in
production. Prints the median of ``prometheus_rule_group_last_duration_seconds`` of each group
over the last minutes, their sum, missed iterations, and the costliest rules (the median of each
rule's ``evaluationTime`` from ``/api/v1/rules``), to show where the time goes.

    .venv/bin/python -m tests.benchmarks.rules_bench [--rules FILE] [--minutes 7] [--jobs 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from tests.helpers import clean_environ, free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "dli-exporter.rules.yml"
TOP_RULES = 8  # the costliest rules printed
INTERVAL = "10s"  # scrape and evaluation: 30 samples in 5 minutes, a [30m] window's at 60 s


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def _query(prometheus: str, expr: str) -> list[dict[str, object]]:
    body = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30).json()
    return list(body["data"]["result"])


def measure(rules: Path, minutes: float, jobs: int) -> dict[str, float]:
    """Median seconds per evaluation of each rule group (and "total"), over the run's second half."""
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as root:
        try:
            sim = subprocess.Popen([sys.executable, "-m", "exporter.simulator", "--jobs", str(jobs), "--evolve",
                                    "--live-durations"], stdout=subprocess.PIPE, cwd=ROOT)
            procs.append(sim)  # type: ignore[arg-type]
            assert sim.stdout is not None
            info = json.loads(sim.stdout.readline())
            port = free_port()
            env = clean_environ({"HUAWEICLOUD_SDK_AK": info["ak"], "HUAWEICLOUD_SDK_SK": info["sk"],
                                 "DLI_EXPORTER_ENDPOINT": info["url"],
                                 "DLI_EXPORTER_PROJECT_IDS": info["project_ids"][0],
                                 "DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "DLI_EXPORTER_CACHE_SECONDS": "0",
                                 "DLI_EXPORTER_LOG_LEVEL": "warning"})
            procs.append(subprocess.Popen([str(Path(sys.executable).parent / "dli-exporter")], env=env))
            _wait(f"http://127.0.0.1:{port}/healthz")
            (Path(root) / "rules.yml").write_text(rules.read_text())
            prom_port = free_port()
            config = {"global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
                      "rule_files": ["rules.yml"],
                      "scrape_configs": [{"job_name": "dli-exporter", "scrape_timeout": "9s",
                                          "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                                         # Its own metrics: the rule groups' evaluation times.
                                         {"job_name": "prometheus",
                                          "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}]}]}
            (Path(root) / "prometheus.yml").write_text(yaml.safe_dump(config))
            prometheus = f"http://127.0.0.1:{prom_port}"
            procs.append(subprocess.Popen(["prometheus", f"--config.file={root}/prometheus.yml",
                                           f"--storage.tsdb.path={root}/tsdb",
                                           f"--web.listen-address=127.0.0.1:{prom_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root))
            _wait(f"{prometheus}/-/ready")
            started = time.monotonic()
            samples: dict[str, list[float]] = {}
            per_rule: dict[str, list[float]] = {}
            while time.monotonic() - started < minutes * 60:
                time.sleep(10)
                if time.monotonic() - started < minutes * 30:
                    continue  # the first half fills the windows
                for row in _query(prometheus, "prometheus_rule_group_last_duration_seconds"):
                    group = str(row["metric"]["rule_group"]).rsplit(";", 1)[-1]  # type: ignore[index]
                    samples.setdefault(group, []).append(float(row["value"][1]))  # type: ignore[index]
                for group in requests.get(f"{prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]:
                    for rule in group["rules"]:
                        name = rule.get("record") or rule.get("name")
                        per_rule.setdefault(f"  rule {name}", []).append(float(rule["evaluationTime"]))
            missed = _query(prometheus, "sum(prometheus_rule_group_iterations_missed_total)")
            jobs_seen = _query(prometheus, "count(dli_job_info)")
            # Alerts expand their annotations (and their `query` templates) once per active alert.
            active = _query(prometheus, "count(ALERTS)")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=20)
    result = {group: statistics.median(values) for group, values in samples.items()}
    result["total"] = sum(result.values())
    result["missed iterations"] = float(missed[0]["value"][1]) if missed else 0.0  # type: ignore[index]
    result["jobs"] = float(jobs_seen[0]["value"][1]) if jobs_seen else 0.0  # type: ignore[index]
    result["active alerts (pending or firing)"] = float(active[0]["value"][1]) if active else 0.0  # type: ignore[index]
    costliest = sorted(((statistics.median(v), k) for k, v in per_rule.items()), reverse=True)[:TOP_RULES]
    result.update({name: value for value, name in costliest})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rules", type=Path, default=RULES)
    parser.add_argument("--minutes", type=float, default=7.0)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = measure(args.rules, args.minutes, args.jobs)
    print(f"rule evaluation at {result.pop('jobs'):,.0f} jobs ({args.rules.name}), median seconds per evaluation:")
    for name, value in result.items():
        print(f"  {name:<28} {value:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
