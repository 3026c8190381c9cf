"""A fixed pool of daemon worker threads that hands out ``concurrent.futures.Future`` objects.

Why not ``ThreadPoolExecutor``: the interpreter joins its workers at exit, so one page call
blocked on a hanging API would hold the process for up to the request timeout after SIGTERM.
These workers are daemon threads: shutting down never waits for the network. Workers start on
demand up to ``max_workers`` and then live as long as the pool, so the thread count is bounded
and does not grow with the number of scrapes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """``submit`` work; at most ``max_workers`` run at once; ``shutdown`` cancels what has not started."""

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._queue.put((future, fn, args))
            # An idle worker takes it; otherwise start one more, up to the limit.
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
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
                if item is not None:
                    item[0].cancel()
            for _ in self._threads:
                self._queue.put(None)
