"""Single-flight, cache and deadlines of sweeps, per target and resource."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.domain import Deadline, Result, Target
from exporter.sweeper import WAITED_TOO_LONG, Sweeper, Swept
from tests.helpers import captured_logs

P1 = Target("p1", "http://127.0.0.1:1")
P2 = Target("p2", "http://127.0.0.1:1")
JOBS = ("p1", "jobs")


def within(seconds: float) -> Deadline:
    return Deadline.after(seconds)


def jobs(read: Callable[[Target, Deadline], Result], reuse: float = 0.0) -> Swept:
    """A resource named jobs, each result reused for ``reuse`` seconds."""
    return Swept("jobs", read, lambda result: reuse)


class SlowSource:
    """A read that takes ``seconds`` and succeeds (or not); it counts its calls per project."""

    def __init__(self, seconds: float = 0.0, ok: bool = True) -> None:
        self.seconds = seconds
        self.ok = ok
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.asked: list[Deadline] = []

    def read(self, target: Target, deadline: Deadline) -> Result:
        with self.lock:
            self.calls[target.project_id] = n = self.calls.get(target.project_id, 0) + 1
            self.asked.append(deadline)
        self.release.wait(10)
        time.sleep(self.seconds)
        records: list[object] | None = [] if self.ok else None
        return Result(records, None if self.ok else "boom", self.seconds, 1000.0 + n)


def sweeper_for(source: SlowSource, cache_seconds: float = 0, **kwargs: object) -> Sweeper:
    return Sweeper([jobs(source.read, cache_seconds)], **kwargs)  # type: ignore[arg-type]


def test_concurrent_scrapes_share_one_sweep() -> None:
    source = SlowSource(0.3)
    sweeper = sweeper_for(source)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sweeper.get([P1], within(5))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert source.calls == {"p1": 1}
    assert len(results) == 4 and all(r.results[JOBS] is results[0].results[JOBS] for r in results)
    assert (sweeper.sweeps, sweeper.cache_hits) == (1, 3)


def test_cache_zero_sweeps_on_every_scrape() -> None:
    source = SlowSource()
    sweeper = sweeper_for(source)
    deadlines = [within(5), within(6)]
    for deadline in deadlines:
        sweeper.get([P1], deadline)
    assert source.calls == {"p1": 2} and sweeper.cache_hits == 0
    assert source.asked == deadlines  # each sweep with its scrape's deadline


def test_cache_reuses_a_fresh_sweep_only() -> None:
    now = [100.0]
    source = SlowSource()
    sweeper = sweeper_for(source, cache_seconds=10, clock=lambda: now[0])
    deadline = Deadline(1e9, 5.0, lambda: now[0])
    first = sweeper.get([P1], deadline).results[JOBS]
    now[0] += 9.9
    assert sweeper.get([P1], deadline).results[JOBS] is first
    now[0] += 0.2
    assert sweeper.get([P1], deadline).results[JOBS] is not first
    assert source.calls == {"p1": 2} and sweeper.cache_hits == 1


def test_a_waiting_scrape_leaves_at_its_deadline_with_projects_down() -> None:
    source = SlowSource(1.0)
    sweeper = sweeper_for(source)
    leader = threading.Thread(target=sweeper.get, args=([P1], within(5)))
    leader.start()
    time.sleep(0.1)
    started = time.monotonic()
    snap = sweeper.get([P1], within(0.2))
    waited = time.monotonic() - started
    leader.join()
    assert waited < 0.5
    assert not snap.results[JOBS].ok and "deadline" in (snap.results[JOBS].error or "")


def test_a_scrape_past_its_deadline_never_gets_an_older_sweep_as_fresh() -> None:
    """A finished sweep is on record; the next one hangs. A scrape that gives up waiting must
    report the project down, not pass the older result off as this scrape's."""
    source = SlowSource()
    sweeper = sweeper_for(source)
    assert sweeper.get([P1], within(5)).results[JOBS].ok
    source.release.clear()
    leader = threading.Thread(target=sweeper.get, args=([P1], within(5)))
    leader.start()
    time.sleep(0.05)
    snap = sweeper.get([P1], within(0.1))
    source.release.set()
    leader.join()
    assert snap.results[JOBS].records is None and snap.results[JOBS].error == WAITED_TOO_LONG


def test_scrapes_that_wait_on_a_failed_sweep_get_its_failure() -> None:
    """A sweep that breaks (a bug) gives every scrape that waited on it that failure, never
    "deadline reached"."""
    release = threading.Event()

    def broken(target: Target, deadline: Deadline) -> Result:
        release.wait(5)
        raise RuntimeError("bug")

    sweeper = Sweeper([jobs(broken)])
    snaps = []
    threads = [threading.Thread(target=lambda: snaps.append(sweeper.get([P1], within(5))))
               for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in threads:
        t.join()
    errors = {s.results[JOBS].error for s in snaps}
    assert errors == {"internal error: RuntimeError('bug')"}


def test_a_broken_sweep_is_one_logged_error() -> None:
    def broken(target: Target, deadline: Deadline) -> Result:
        raise RuntimeError("bug")

    sweeper = Sweeper([jobs(broken)])
    with captured_logs("info") as log:
        sweeper.get([P1], within(5))
    [line] = log.getvalue().splitlines()
    assert 'level=error logger=exporter.sweeper msg="sweep failed unexpectedly" project_id=p1 resource=jobs' in line
    assert line.endswith(" error=RuntimeError('bug')")


def test_last_success_survives_a_failed_sweep() -> None:
    source = SlowSource()
    sweeper = sweeper_for(source)
    assert sweeper.get([P1], within(5)).last_success == {JOBS: 1001.0}
    source.ok = False
    snap = sweeper.get([P1], within(5))
    assert not snap.results[JOBS].ok and snap.last_success == {JOBS: 1001.0}


def test_targets_fly_separately() -> None:
    """Single-flight and cache are per target: a scrape of p2 neither waits for p1's sweep nor
    reuses it, and a scrape of both joins the one running and starts the other."""
    source = SlowSource()
    sweeper = sweeper_for(source, cache_seconds=60)
    sweeper.get([P1], within(5))
    both = sweeper.get([P1, P2], within(5))
    assert source.calls == {"p1": 1, "p2": 1}
    assert set(both.results) == {JOBS, ("p2", "jobs")} and both.last_success == {JOBS: 1001.0, ("p2", "jobs"): 1001.0}
    assert sweeper.get([P2], within(5)).results["p2", "jobs"] is both.results["p2", "jobs"]
    assert (sweeper.sweeps, sweeper.cache_hits) == (2, 1)


def test_resources_are_swept_on_their_own_cadence_and_fail_alone() -> None:
    """Each (target, resource) has its own flight and cache: a resource reused for longer is not
    read again with the next sweep, and one that fails leaves the others' results as they are."""
    now = [100.0]
    reads: list[str] = []
    queues_ok = [True]

    def read_jobs(target: Target, deadline: Deadline) -> Result:
        reads.append("jobs")
        return Result([1], None, 0.0, now[0])

    def read_queues(target: Target, deadline: Deadline) -> Result:
        reads.append("queues")
        return Result([2] if queues_ok[0] else None, None if queues_ok[0] else "HTTP 500", 0.0, now[0])

    queues = Swept("queues", read_queues, lambda result: 300.0 if result.ok else 0.0)
    sweeper = Sweeper([jobs(read_jobs), queues], clock=lambda: now[0])
    deadline = Deadline(1e9, 5.0, lambda: now[0])
    first = sweeper.get([P1], deadline)
    assert sorted(reads) == ["jobs", "queues"] and first.results["p1", "queues"].records == [2]
    for _ in range(4):  # a scrape a minute: the jobs every time, the queues once in 300 s
        now[0] += 60
        assert sweeper.get([P1], deadline).results["p1", "queues"] is first.results["p1", "queues"]
    assert reads.count("jobs") == 5 and reads.count("queues") == 1
    now[0] += 60
    queues_ok[0] = False
    failed = sweeper.get([P1], deadline)
    assert failed.results["p1", "jobs"].ok and not failed.results["p1", "queues"].ok
    assert failed.last_success["p1", "queues"] == 100.0  # when the queues last succeeded
    queues_ok[0] = True
    now[0] += 1
    assert sweeper.get([P1], deadline).results["p1", "queues"].ok  # a failure is not reused: tried again
    assert reads.count("queues") == 3
    sweeper.close()
