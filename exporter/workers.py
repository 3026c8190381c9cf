"""A fixed pool of daemon worker threads that hands out ``concurrent.futures.Future`` objects.

Why not ``ThreadPoolExecutor``: the interpreter joins its workers at exit, so one page call
blocked on a hanging API would hold the process for up to the request timeout after SIGTERM.
These workers are daemon threads: shutting down never waits for the network. Workers start on
demand up to ``max_workers`` and then live as long as the pool, so the thread count is bounded
and does not grow with the number of scrapes. Work is taken by priority, then in order: a page of
the summary view, which a scrape waits for, goes before the pages of a detail refresh that no
scrape waits for.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

MAX_WORKERS = 16  # threads of one pool at most, whatever it is asked for

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
_Item = tuple[float, int, _Work | None]  # (priority, sequence, work); None tells a worker to end


class DaemonPool:
    """``submit`` work; at most ``max_workers`` (from 1 to :data:`MAX_WORKERS`) run at once;
    ``shutdown`` cancels what has not started."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max(1, min(MAX_WORKERS, max_workers))  # the one clamp of every pool's size
        self._name = name
        self._queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any, priority: int = 0) -> Future[T]:
        """Run ``fn(*args)`` on a worker; lower ``priority`` first, equal ones in order."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._queue.put((priority, next(self._sequence), (future, fn, args)))
            # An idle worker takes it; otherwise start one more, up to the limit.
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()[2]
            if item is None:
                return
            future, fn, args = item
            del item
            if not future.set_running_or_notify_cancel():
                self._idle.release()
                continue
            result: Any = None
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001  (handed to the caller through the future)
                # Idle before the caller sees the outcome, so its next submit reuses this worker.
                self._idle.release()
                future.set_exception(exc)
            else:
                self._idle.release()
                future.set_result(result)
            del future, fn, args, result  # do not keep the last call's data alive while idle

    def shutdown(self) -> None:
        """Cancel queued work and let the workers end once their current call returns; never blocks."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[2] is not None:
                    item[2][0].cancel()
            for _ in self._threads:
                self._queue.put((math.inf, next(self._sequence), None))
