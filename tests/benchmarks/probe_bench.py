"""`/probe` at scale: 200 distinct targets of 200 jobs each, each probed every 15 s as Prometheus
would (the probes spread over the interval), against the simulator in its own process. Reports
CPU per probe, peak RSS and API calls of the exporter process. Then the probes stop: once
DLI_EXPORTER_PROBE_IDLE_SECONDS (shortened here) has passed, the exporter must hold no target
(`dli_targets`), and a second set of 200 *other* targets must leave RSS where the first left it:
memory follows the targets in use, not every target ever probed.

    .venv/bin/python -m tests.benchmarks.probe_bench [--targets 200] [--rounds 4]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.benchmarks.bench import cpu_seconds, exporter, peak_rss_mb, simulator
from tests.helpers import scrape

INTERVAL = 15.0
IDLE = 30.0  # DLI_EXPORTER_PROBE_IDLE_SECONDS for this run (900 by default)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(url: str, name: str) -> float:
    return scrape(url, timeout=30).total(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    # /probe only (no configured project), at default settings otherwise (a 10 s cache).
    probe_only = {"DLI_EXPORTER_PROJECT_IDS": "", "DLI_EXPORTER_LOG_LEVEL": "error",
                  "DLI_EXPORTER_PROBE_IDLE_SECONDS": f"{IDLE:g}"}
    with simulator(args.jobs, 0.05, projects=2 * args.targets) as info, \
            exporter(info, concurrency=8, cache_seconds=10, extra_env=probe_only) as (pid, url):
        ids = list(info["project_ids"])  # type: ignore[call-overload]
        return _run(args, ids[:args.targets], ids[args.targets:], pid, url)


def _probe_rounds(url: str, targets: list[str], rounds: int) -> tuple[float, int]:
    """Each target probed once per interval for ``rounds`` intervals; (seconds taken, failures)."""
    failures = 0
    lock = threading.Lock()

    def probe(target: str) -> None:
        nonlocal failures
        resp = requests.get(url + "/probe", params={"target": target}, timeout=30,
                            headers={"X-Prometheus-Scrape-Timeout-Seconds": "10", "Accept-Encoding": "gzip"})
        if resp.status_code != 200 or f'dli_up{{project_id="{target}"}} 1.0' not in resp.text:
            with lock:
                failures += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for round_ in range(rounds):
            for i, target in enumerate(targets):  # spread over the interval, as Prometheus does
                due = started + round_ * INTERVAL + i * INTERVAL / len(targets)
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(probe, target)
    return time.monotonic() - started, failures


def _forgotten(url: str) -> tuple[float, float]:
    """Wait until the exporter holds no target (at most IDLE + 90 s); (seconds waited, targets held)."""
    started = time.monotonic()
    held = metric(url, "dli_targets")
    while held and time.monotonic() - started < IDLE + 90:
        time.sleep(5)
        held = metric(url, "dli_targets")  # /metrics is what runs the eviction check, as Prometheus does
    return time.monotonic() - started, held


def _run(args: argparse.Namespace, first: list[str], second: list[str], pid: int, url: str) -> int:
    cpu_before = cpu_seconds(pid)
    took, failures = _probe_rounds(url, first, args.rounds)
    cpu = cpu_seconds(pid) - cpu_before
    probes = args.rounds * len(first)
    after = rss_mb(pid)
    calls = metric(url, "dli_api_requests_total")
    held = metric(url, "dli_targets")
    waited, left = _forgotten(url)
    rested = rss_mb(pid)
    _, failures2 = _probe_rounds(url, second, args.rounds)
    again = rss_mb(pid)
    print(f"/probe: {len(first)} targets of {args.jobs} jobs, each every {INTERVAL:g} s, {args.rounds} rounds "
          f"({probes} probes in {took:.0f} s, {failures} failed)")
    per_job = 1e6 * cpu / (probes * args.jobs)
    print(f"  CPU per probe          {1000 * cpu / probes:.1f} ms ({per_job:.1f} us a job)")
    print(f"  exporter CPU           {100 * cpu / took:.0f} % of one core")
    print(f"  API calls              {calls:.0f} ({calls / probes:.2f} a probe: summary pages, and the detail"
          " view on each target's first probe)")
    print(f"  peak RSS               {peak_rss_mb(pid):.1f} MB")
    print(f"  targets held           {held:.0f} while probed; {left:.0f} {waited:.0f} s after the probes stopped "
          f"(DLI_EXPORTER_PROBE_IDLE_SECONDS={IDLE:g})")
    print(f"  RSS                    {after:.1f} MB after the probes, {rested:.1f} MB once they were forgotten, "
          f"{again:.1f} MB after {len(second)} other targets ({failures2} failed)")
    flat = again <= after * 1.10
    return 0 if failures == failures2 == 0 and left == 0 and flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
