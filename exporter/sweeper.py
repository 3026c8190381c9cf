"""Sweeps on demand: single-flight, a short cache, and a deadline per scrape.

Scrapes that arrive while a sweep runs wait for that sweep instead of starting their own, and a
finished sweep is reused for ``cache_seconds``: two Prometheus replicas cost the API one sweep.
A scrape never waits past its deadline; projects whose sweep did not finish by then are reported
as failed (``dli_up 0``), never with partial data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .client import ProjectResult


class SweepSource(Protocol):
    def sweep(self, deadline: float) -> dict[str, ProjectResult]: ...


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reports: each project's latest result and when it last fully succeeded."""

    results: dict[str, ProjectResult]
    last_success: dict[str, float] = field(default_factory=dict)  # epoch seconds


class Sweeper:
    def __init__(self, source: SweepSource, project_ids: Iterable[str], cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._project_ids = list(project_ids)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._latest_at = 0.0
        self._inflight: threading.Event | None = None
        self._last_success: dict[str, float] = {}
        self.sweeps = 0
        self.cache_hits = 0

    def get(self, deadline: float) -> Snapshot:
        """A snapshot no older than ``cache_seconds``, waiting at most until ``deadline``."""
        with self._lock:
            if self._latest is not None and self._clock() - self._latest_at < self._cache_seconds:
                self.cache_hits += 1
                return self._latest
            running = self._inflight
            if running is None:
                running = self._inflight = threading.Event()
                leader = True
                self.sweeps += 1
            else:
                leader = False
        if leader:
            return self._lead(running, deadline)
        if running.wait(max(0.0, deadline - self._clock())):
            with self._lock:
                self.cache_hits += 1
                if self._latest is not None:
                    return self._latest
        return self._timed_out()

    def _lead(self, running: threading.Event, deadline: float) -> Snapshot:
        results: dict[str, ProjectResult] = {}
        try:
            results = self._source.sweep(deadline)
        finally:
            with self._lock:
                for pid, result in results.items():
                    if result.ok:
                        self._last_success[pid] = result.finished_at
                snapshot = Snapshot(results, dict(self._last_success))
                if results:
                    self._latest = snapshot
                    self._latest_at = self._clock()
                self._inflight = None
                running.set()
        return snapshot

    def _timed_out(self) -> Snapshot:
        """The answer for a scrape whose deadline came before the running sweep finished."""
        now = time.time()
        with self._lock:
            failed = {pid: ProjectResult(pid, None, "scrape deadline reached while waiting for the sweep", 0.0, now)
                      for pid in self._project_ids}
            return Snapshot(failed, dict(self._last_success))
