"""The daemon worker pool behind concurrent paging."""

from __future__ import annotations

import threading

import pytest

from exporter.workers import DaemonPool


def test_results_exceptions_and_the_worker_bound() -> None:
    pool = DaemonPool(3, "t")
    gate = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1
        if n == 4:
            raise ValueError("four")
        return n * 2

    futures = [pool.submit(work, n) for n in range(10)]
    gate.set()
    assert [f.result(5) for f in futures if f is not futures[4]] == [n * 2 for n in range(10) if n != 4]
    with pytest.raises(ValueError, match="four"):
        futures[4].result(5)
    assert peak == 3
    assert len([t for t in threading.enumerate() if t.name.startswith("t-")]) == 3
    pool.shutdown()


def test_workers_are_daemons_and_shutdown_cancels_queued_work_without_waiting() -> None:
    pool = DaemonPool(1, "d")
    release = threading.Event()
    busy = pool.submit(release.wait, 5)
    queued = pool.submit(lambda: 1)
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("d-"))
    pool.shutdown()  # returns while the first call is still blocked
    assert queued.cancelled() and not busy.done()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 1)
    release.set()
    assert busy.result(5) is True


def test_idle_workers_are_reused() -> None:
    pool = DaemonPool(4, "r")
    for n in range(50):
        assert pool.submit(lambda x: x, n).result(5) == n
    assert len([t for t in threading.enumerate() if t.name.startswith("r-")]) == 1
    pool.shutdown()


def test_a_worker_survives_a_failing_call() -> None:
    pool = DaemonPool(1, "s")
    failed = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result(5)
    assert pool.submit(lambda: "still here").result(5) == "still here"
    assert len([t for t in threading.enumerate() if t.name.startswith("s-") and t.is_alive()]) == 1
    pool.shutdown()
