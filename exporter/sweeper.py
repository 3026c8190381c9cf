"""Sweeps on demand, per target: single-flight, a short cache, and a deadline per scrape.

Each target has its own flight: scrapes that want a target while its sweep runs wait for that
sweep instead of starting their own, and a finished sweep is reused for ``cache_seconds``, so two
Prometheus replicas cost the API one sweep. A flight runs on the sweeper's own workers with the
deadline of the scrape that started it, and keeps its outcome: every scrape that waited on it gets
exactly that outcome, even when the sweep failed. A scrape never waits past its deadline (plus a
moment for the hand-over): a target whose sweep has not finished by then is reported down for
that scrape, never with older data passed off as fresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .domain import ProjectResult, Snapshot, Target
from .workers import DaemonPool

log = logging.getLogger(__name__)

HANDOVER = 0.1  # seconds a scrape waits past its deadline for a sweep that is handing over its result
IDLE_EVICT = 900.0  # a target nobody asked for in this long is forgotten (probed targets come and go)
MAX_WORKERS = 16
WAITED_TOO_LONG = "scrape deadline reached while waiting for the sweep"

Read = Callable[[Target, float], ProjectResult]  # one sweep of a target, by a deadline


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: ProjectResult | None = None


@dataclass
class _State:
    """What the sweeper knows of one target."""

    latest: ProjectResult | None = None
    latest_at: float = 0.0  # clock() when it finished
    flight: _Flight | None = None
    last_success: float | None = None  # epoch seconds
    used: float = 0.0  # clock() of the last scrape that asked for it


class Sweeper:
    """Sweeps targets with ``read``; ``get`` gives a snapshot of several targets for one scrape."""

    def __init__(self, read: Read, cache_seconds: float, *, workers: int = MAX_WORKERS,
                 pinned: Iterable[Target] = (), on_evict: Callable[[Target], None] | None = None,
                 idle_evict: float = IDLE_EVICT, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._read = read
        # Memory stays bounded however many distinct targets /probe is asked for: a target idle
        # for `idle_evict` is forgotten (and `on_evict` told, for what others keep per target),
        # except the configured ones of /metrics.
        self._pinned = frozenset(pinned)
        self._on_evict = on_evict
        self._idle_evict = idle_evict
        self._next_eviction = 0.0
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._states: dict[Target, _State] = {}
        # Daemon workers: a sweep stuck on a hanging API must not hold the process at SIGTERM.
        self._workers = DaemonPool(max(1, min(MAX_WORKERS, workers)), "dli-sweep")
        self.sweeps = 0  # scrapes that started at least one sweep
        self.cache_hits = 0  # scrapes answered wholly from cached or running sweeps

    def __repr__(self) -> str:
        return f"Sweeper(targets={len(self._states)}, cache_seconds={self._cache_seconds})"

    def get(self, targets: Sequence[Target], deadline: float) -> Snapshot:
        """Each target's result no older than ``cache_seconds``, waiting at most until ``deadline``."""
        results: dict[str, ProjectResult] = {}
        waiting: list[tuple[Target, _Flight]] = []
        starting: list[tuple[Target, _Flight]] = []
        with self._lock:
            now = self._clock()
            evicted = self._evict(now, set(targets)) if now >= self._next_eviction else []
            for target in targets:
                state = self._states.setdefault(target, _State())
                state.used = now
                if state.latest is not None and now - state.latest_at < self._cache_seconds:
                    results[target.project_id] = state.latest
                    continue
                if state.flight is None:
                    state.flight = _Flight()
                    starting.append((target, state.flight))
                waiting.append((target, state.flight))
            if starting:
                self.sweeps += 1
            else:
                self.cache_hits += 1
        for target in evicted:
            if self._on_evict is not None:
                self._on_evict(target)
        for target, flight in starting:
            self._workers.submit(self._fly, target, flight, deadline)
        for target, flight in waiting:
            results[target.project_id] = self._wait(target, flight, deadline)
        with self._lock:
            last = {t.project_id: s.last_success for t in targets
                    if (s := self._states.get(t)) is not None and s.last_success is not None}
        return Snapshot(results, last)

    def _evict(self, now: float, wanted: set[Target]) -> list[Target]:
        """Forget targets idle for ``idle_evict`` but ``wanted`` (under the lock); checked once a
        minute at most."""
        self._next_eviction = now + min(60.0, self._idle_evict)
        idle = [t for t, s in self._states.items() if t not in self._pinned and t not in wanted
                and s.flight is None and now - s.used >= self._idle_evict]
        for target in idle:
            del self._states[target]
        return idle

    def _wait(self, target: Target, flight: _Flight, deadline: float) -> ProjectResult:
        if flight.done.wait(max(0.0, deadline - self._clock()) + HANDOVER) and flight.result is not None:
            return flight.result
        return ProjectResult.down(target.project_id, WAITED_TOO_LONG, 0.0, self._wall())

    def _fly(self, target: Target, flight: _Flight, deadline: float) -> None:
        started = self._clock()
        try:
            result = self._read(target, deadline)
        except Exception as exc:  # noqa: BLE001  (a bug must not leave the scrapes that wait without an answer)
            log.error("sweep failed unexpectedly", extra={"project_id": target.project_id, "error": repr(exc)})
            result = ProjectResult.down(target.project_id, f"internal error: {exc!r}", self._clock() - started,
                                        self._wall())
        with self._lock:
            state = self._states[target]
            state.latest, state.latest_at, state.flight = result, self._clock(), None
            if result.ok:
                state.last_success = result.finished_at
            flight.result = result
        flight.done.set()

    def results(self, targets: Iterable[Target]) -> dict[str, ProjectResult]:
        """The latest finished result of each target that has one, without sweeping."""
        with self._lock:
            return {t.project_id: s.latest for t in targets if (s := self._states.get(t)) is not None
                    and s.latest is not None}

    @property
    def held(self) -> int:
        """Targets with state here: the configured ones, and those probed within ``idle_evict``."""
        with self._lock:
            return len(self._states)

    def scope(self, targets: Iterable[Target]) -> Scope:
        """These targets as one source of snapshots (what ``/metrics`` reports)."""
        return Scope(self, tuple(targets))

    def close(self) -> None:
        self._workers.shutdown()


class Scope:
    """A fixed set of targets of a sweeper: the snapshot source a collector reads."""

    def __init__(self, sweeper: Sweeper, targets: tuple[Target, ...]) -> None:
        self.sweeper = sweeper
        self.targets = targets

    def get(self, deadline: float) -> Snapshot:
        return self.sweeper.get(self.targets, deadline)

    @property
    def sweeps(self) -> int:
        return self.sweeper.sweeps

    @property
    def cache_hits(self) -> int:
        return self.sweeper.cache_hits

    @property
    def held(self) -> int:
        return self.sweeper.held
