"""`/probe` at scale: 200 distinct targets of 200 jobs each, each probed every 15 s as Prometheus
would (the probes spread over the interval), against the simulator in its own process. Reports
CPU per probe, peak RSS and API calls of the exporter process, and that its memory stays flat
once the probes stop.

    .venv/bin/python -m tests.benchmarks.probe_bench [--targets 200] [--rounds 4]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.benchmarks.bench import cpu_seconds, exporter, peak_rss_mb, simulator

INTERVAL = 15.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    # /probe only (no configured project), at default settings otherwise (a 10 s cache).
    probe_only = {"DLI_EXPORTER_PROJECT_IDS": "", "DLI_EXPORTER_LOG_LEVEL": "error"}
    with simulator(args.jobs, 0.05, projects=args.targets) as info, \
            exporter(info, concurrency=8, cache_seconds=10, extra_env=probe_only) as (pid, url):
        return _run(args, dict(info), pid, url)


def _run(args: argparse.Namespace, info: dict[str, Any], pid: int, url: str) -> int:
    targets = list(info["project_ids"])
    failures = 0
    lock = threading.Lock()

    def probe(target: str) -> None:
        nonlocal failures
        resp = requests.get(url + "/probe", params={"target": target}, timeout=30,
                            headers={"X-Prometheus-Scrape-Timeout-Seconds": "10", "Accept-Encoding": "gzip"})
        if resp.status_code != 200 or f'dli_up{{project_id="{target}"}} 1.0' not in resp.text:
            with lock:
                failures += 1

    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for round_ in range(args.rounds):
            for i, target in enumerate(targets):  # spread over the interval, as Prometheus does
                due = started + round_ * INTERVAL + i * INTERVAL / len(targets)
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(probe, target)
    took = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu_before
    probes = args.rounds * len(targets)
    after = rss_mb(pid)
    metrics = requests.get(url + "/metrics", timeout=30).text
    calls = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("dli_api_requests_total{"))
    time.sleep(30)  # the probes have stopped
    rested = rss_mb(pid)
    print(f"/probe: {len(targets)} targets of {args.jobs} jobs, each every {INTERVAL:g} s, {args.rounds} rounds "
          f"({probes} probes in {took:.0f} s, {failures} failed)")
    per_job = 1e6 * cpu / (probes * args.jobs)
    print(f"  CPU per probe          {1000 * cpu / probes:.1f} ms ({per_job:.1f} us a job)")
    print(f"  exporter CPU           {100 * cpu / took:.0f} % of one core")
    print(f"  API calls              {calls:.0f} ({calls / probes:.2f} a probe: summary pages, and the detail"
          " view on each target's first probe)")
    print(f"  peak RSS               {peak_rss_mb(pid):.1f} MB")
    print(f"  RSS after the probes   {after:.1f} MB; 30 s later {rested:.1f} MB")
    return 0 if failures == 0 and rested <= after * 1.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
