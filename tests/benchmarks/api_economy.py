"""What the API sees, over real HTTP against the simulator (about 40 s): detail reads among
back-to-back uncached scrapes, the calls a wrong key costs, and the calls after a throttled window.

    .venv/bin/python -m tests.benchmarks.api_economy
"""

from __future__ import annotations

import logging
import time

from exporter.simulator import Gateway, Simulator, synthetic_projects
from tests.helpers import jobs, running_exporter, scrape, settings_for


def first_pages(sim: Simulator, detail: bool) -> int:
    return sum(1 for r in sim.recorded("/v1.0/") if r.path.endswith("/streaming/jobs")
               and r.query.get("offset") == "0" and (r.query.get("show_detail") == "true") == detail)


def detail_reads(interval: float, seconds: float = 10.0) -> str:
    with Simulator(synthetic_projects(1000, 2)) as sim, \
            running_exporter(settings_for(sim, detail_interval_seconds=interval)) as exporter:
        started, scrapes = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            scrape(exporter, timeout=20)
            scrapes += 1
        took = time.monotonic() - started
        time.sleep(0.5)  # a detail read the last scrape started
        queue_reads = len([r for r in sim.recorded("/v1.0/") if r.path.endswith("/queues")]) / 2
        return (f"detail interval {interval:g} s: {scrapes} uncached scrapes in {took:.1f} s; per project "
                f"{first_pages(sim, False) / 2:.0f} summary reads, {first_pages(sim, True) / 2:.0f} detail reads "
                f"(at most 1 + {took / interval:.1f}), {queue_reads:.0f} queue reads (every 300 s)")


def wrong_key(scrapes: int = 30) -> str:
    gateway = Gateway()
    with Simulator({f"p{i}": jobs(120, start=1000 * i) for i in range(1, 5)}, gateway=gateway) as sim, \
            running_exporter(settings_for(sim, sk="a-wrong-secret-key")) as exporter:
        started = time.monotonic()
        for _ in range(scrapes):
            scrape(exporter, timeout=20)
            time.sleep(0.5)
        refused = sum(1 for r in sim.recorded() if r.status == 401)
        return (f"wrong key, 4 projects, both views: {len(sim.recorded())} calls ({refused} refused) in {scrapes} "
                f"scrapes over {time.monotonic() - started:.0f} s; keys locked by the gateway: {gateway.lockouts}")


def throttled(scrapes: int = 20) -> str:
    gateway = Gateway(budget=2, window=60)
    with Simulator({"p1": jobs(250)}, gateway=gateway) as sim, \
            running_exporter(settings_for(sim, show_detail=False, concurrency=1)) as exporter:
        scrape(exporter, timeout=20)
        first = len(sim.recorded())
        for _ in range(scrapes):
            scrape(exporter, timeout=20)
            time.sleep(0.2)
        return (f"throttled (2 calls a minute, 3 pages): {first} calls up to the 429, "
                f"{len(sim.recorded()) - first} in the {scrapes} scrapes after it; 429s: {gateway.throttled}")


def main() -> int:
    logging.disable(logging.WARNING)
    for line in (detail_reads(600), detail_reads(2), wrong_key(), throttled()):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
