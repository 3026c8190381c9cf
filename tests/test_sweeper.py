"""Single-flight, cache and deadlines of sweeps, per target."""

from __future__ import annotations

import threading
import time

from exporter.domain import Credential, ProjectResult, Target
from exporter.sweeper import WAITED_TOO_LONG, Sweeper
from tests.helpers import captured_logs

CREDENTIAL = Credential("aksk", "AK")
P1 = Target("p1", "http://127.0.0.1:1", CREDENTIAL)
P2 = Target("p2", "http://127.0.0.1:1", CREDENTIAL)


class SlowSource:
    """A read that takes ``seconds`` and succeeds (or not); it counts its calls per project."""

    def __init__(self, seconds: float = 0.0, ok: bool = True) -> None:
        self.seconds = seconds
        self.ok = ok
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.asked: list[float] = []

    def read(self, target: Target, deadline: float) -> ProjectResult:
        with self.lock:
            self.calls[target.project_id] = n = self.calls.get(target.project_id, 0) + 1
            self.asked.append(deadline)
        self.release.wait(10)
        time.sleep(self.seconds)
        jobs = [] if self.ok else None
        return ProjectResult(target.project_id, jobs, None if self.ok else "boom", self.seconds, 1000.0 + n)


def sweeper_for(source: SlowSource, cache_seconds: float = 0, **kwargs: object) -> Sweeper:
    return Sweeper(source.read, cache_seconds, **kwargs)  # type: ignore[arg-type]


def test_concurrent_scrapes_share_one_sweep() -> None:
    source = SlowSource(0.3)
    sweeper = sweeper_for(source)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sweeper.get([P1], time.monotonic() + 5)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert source.calls == {"p1": 1}
    assert len(results) == 4 and all(r.results["p1"] is results[0].results["p1"] for r in results)
    assert (sweeper.sweeps, sweeper.cache_hits) == (1, 3)


def test_cache_zero_sweeps_on_every_scrape() -> None:
    source = SlowSource()
    sweeper = Sweeper(source.read, 0)
    deadlines = [time.monotonic() + 5, time.monotonic() + 6]
    for deadline in deadlines:
        sweeper.get([P1], deadline)
    assert source.calls == {"p1": 2} and sweeper.cache_hits == 0
    assert source.asked == deadlines  # each sweep with its scrape's deadline


def test_cache_reuses_a_fresh_sweep_only() -> None:
    now = [100.0]
    source = SlowSource()
    sweeper = sweeper_for(source, cache_seconds=10, clock=lambda: now[0])
    first = sweeper.get([P1], now[0] + 5).results["p1"]
    now[0] += 9.9
    assert sweeper.get([P1], now[0] + 5).results["p1"] is first
    now[0] += 0.2
    assert sweeper.get([P1], now[0] + 5).results["p1"] is not first
    assert source.calls == {"p1": 2} and sweeper.cache_hits == 1


def test_a_waiting_scrape_leaves_at_its_deadline_with_projects_down() -> None:
    source = SlowSource(1.0)
    sweeper = sweeper_for(source)
    leader = threading.Thread(target=sweeper.get, args=([P1], time.monotonic() + 5))
    leader.start()
    time.sleep(0.1)
    started = time.monotonic()
    snap = sweeper.get([P1], time.monotonic() + 0.2)
    waited = time.monotonic() - started
    leader.join()
    assert waited < 0.5
    assert not snap.results["p1"].ok and "deadline" in (snap.results["p1"].error or "")


def test_a_scrape_past_its_deadline_never_gets_an_older_sweep_as_fresh() -> None:
    """A finished sweep is on record; the next one hangs. A scrape that gives up waiting must
    report the project down, not pass the older result off as this scrape's."""
    source = SlowSource()
    sweeper = sweeper_for(source)
    assert sweeper.get([P1], time.monotonic() + 5).results["p1"].ok
    source.release.clear()
    leader = threading.Thread(target=sweeper.get, args=([P1], time.monotonic() + 5))
    leader.start()
    time.sleep(0.05)
    snap = sweeper.get([P1], time.monotonic() + 0.1)
    source.release.set()
    leader.join()
    assert snap.results["p1"].jobs is None and snap.results["p1"].error == WAITED_TOO_LONG


def test_scrapes_that_wait_on_a_failed_sweep_get_its_failure() -> None:
    """A sweep that breaks (a bug) gives every scrape that waited on it that failure, never
    "deadline reached"."""
    release = threading.Event()

    def broken(target: Target, deadline: float) -> ProjectResult:
        release.wait(5)
        raise RuntimeError("bug")

    sweeper = Sweeper(broken, 0)
    snaps = []
    threads = [threading.Thread(target=lambda: snaps.append(sweeper.get([P1], time.monotonic() + 5)))
               for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in threads:
        t.join()
    errors = {s.results["p1"].error for s in snaps}
    assert errors == {"internal error: RuntimeError('bug')"}


def test_a_broken_sweep_is_one_logged_error() -> None:
    def broken(target: Target, deadline: float) -> ProjectResult:
        raise RuntimeError("bug")

    sweeper = Sweeper(broken, 0)
    with captured_logs("info") as log:
        sweeper.get([P1], time.monotonic() + 5)
    [line] = log.getvalue().splitlines()
    assert 'level=error logger=exporter.sweeper msg="sweep failed unexpectedly" project_id=p1' in line
    assert line.endswith(" error=RuntimeError('bug')")


def test_last_success_survives_a_failed_sweep() -> None:
    source = SlowSource()
    sweeper = sweeper_for(source)
    assert sweeper.get([P1], time.monotonic() + 5).last_success == {"p1": 1001.0}
    source.ok = False
    snap = sweeper.get([P1], time.monotonic() + 5)
    assert not snap.results["p1"].ok and snap.last_success == {"p1": 1001.0}


def test_targets_fly_separately() -> None:
    """Single-flight and cache are per target: a scrape of p2 neither waits for p1's sweep nor
    reuses it, and a scrape of both joins the one running and starts the other."""
    source = SlowSource()
    sweeper = sweeper_for(source, cache_seconds=60)
    sweeper.get([P1], time.monotonic() + 5)
    both = sweeper.get([P1, P2], time.monotonic() + 5)
    assert source.calls == {"p1": 1, "p2": 1}
    assert set(both.results) == {"p1", "p2"} and both.last_success == {"p1": 1001.0, "p2": 1001.0}
    assert sweeper.get([P2], time.monotonic() + 5).results["p2"] is both.results["p2"]
    assert (sweeper.sweeps, sweeper.cache_hits) == (2, 1)
