"""Single-flight, cache and deadlines of sweeps."""

from __future__ import annotations

import threading
import time

from exporter.client import ProjectResult
from exporter.sweeper import Sweeper


class SlowSource:
    def __init__(self, seconds: float = 0.0, ok: bool = True) -> None:
        self.seconds = seconds
        self.ok = ok
        self.calls = 0
        self.lock = threading.Lock()

    def sweep(self, deadline: float) -> dict[str, ProjectResult]:
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        jobs = [] if self.ok else None
        return {"p1": ProjectResult("p1", jobs, None if self.ok else "boom", self.seconds, 1000.0 + n)}


def test_concurrent_scrapes_share_one_sweep() -> None:
    source = SlowSource(0.3)
    sweeper = Sweeper(source, ["p1"], cache_seconds=0)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sweeper.get(time.monotonic() + 5))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert source.calls == 1
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert (sweeper.sweeps, sweeper.cache_hits) == (1, 3)


def test_cache_zero_sweeps_on_every_scrape() -> None:
    source = SlowSource()
    sweeper = Sweeper(source, ["p1"], cache_seconds=0)
    sweeper.get(time.monotonic() + 5)
    sweeper.get(time.monotonic() + 5)
    assert source.calls == 2 and sweeper.cache_hits == 0


def test_cache_reuses_a_fresh_sweep_only() -> None:
    now = [100.0]
    source = SlowSource()
    sweeper = Sweeper(source, ["p1"], cache_seconds=10, clock=lambda: now[0])
    first = sweeper.get(now[0] + 5)
    now[0] += 9.9
    assert sweeper.get(now[0] + 5) is first
    now[0] += 0.2
    assert sweeper.get(now[0] + 5) is not first
    assert source.calls == 2 and sweeper.cache_hits == 1


def test_a_waiting_scrape_leaves_at_its_deadline_with_projects_down() -> None:
    source = SlowSource(1.0)
    sweeper = Sweeper(source, ["p1"], cache_seconds=0)
    leader = threading.Thread(target=sweeper.get, args=(time.monotonic() + 5,))
    leader.start()
    time.sleep(0.1)
    started = time.monotonic()
    snap = sweeper.get(time.monotonic() + 0.2)
    waited = time.monotonic() - started
    leader.join()
    assert waited < 0.5
    assert not snap.results["p1"].ok and "deadline" in (snap.results["p1"].error or "")


def test_last_success_survives_a_failed_sweep() -> None:
    source = SlowSource()
    sweeper = Sweeper(source, ["p1"], cache_seconds=0)
    assert sweeper.get(time.monotonic() + 5).last_success == {"p1": 1001.0}
    source.ok = False
    snap = sweeper.get(time.monotonic() + 5)
    assert not snap.results["p1"].ok and snap.last_success == {"p1": 1001.0}
