"""Sweeps on demand, per target and resource: single-flight, a cache, and a deadline per scrape.

Each (target, resource) has its own sweep: scrapes that want it while its sweep runs wait for
that sweep instead of starting their own, and a finished sweep is reused for as long as its
resource says (the cache's time for jobs, the resource's own interval for queues), so two
Prometheus replicas cost the API one sweep. A sweep runs on the sweeper's own workers with the
deadline of the scrape that started it, and keeps its outcome: every scrape that waited on it gets
exactly that outcome, even when the sweep failed. A scrape never waits past its deadline (plus a
moment for the hand-over): what has not finished by then is reported down for that scrape, never
with older data passed off as fresh. Resources do not wait for each other: a failed or slow read
of one leaves the others as they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .domain import Clock, Deadline, Result, Snapshot, Target
from .workers import MAX_WORKERS, DaemonPool

log = logging.getLogger(__name__)

HANDOVER = 0.1  # seconds a scrape waits past its deadline for a sweep that is handing over its result
IDLE_EVICT = 900.0  # a target nobody asked for in this long is forgotten (probed targets come and go)
WAITED_TOO_LONG = "scrape deadline reached while waiting for the sweep"


@dataclass(frozen=True)
class Swept:
    """A resource as the sweeper reads it: its name, one read of a target by a deadline, and how
    long a result of it is reused."""

    name: str
    read: Callable[[Target, Deadline], Result]
    reuse_for: Callable[[Result], float]


@dataclass
class _Sweep:
    """A sweep in progress, and its outcome once done."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None


@dataclass
class _State:
    """What the sweeper knows of one resource of one target."""

    latest: Result | None = None
    fresh_until: float = 0.0  # clock(): the latest result is reused until then
    sweep: _Sweep | None = None
    last_success: float | None = None  # epoch seconds


class Sweeper:
    """Sweeps the resources of targets; ``get`` gives a snapshot of several targets for one scrape."""

    def __init__(self, resources: Sequence[Swept], *, workers: int = MAX_WORKERS, pinned: Iterable[Target] = (),
                 on_evict: Callable[[Target], None] | None = None, idle_evict: float = IDLE_EVICT,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._resources = tuple(resources)
        # Memory stays bounded however many distinct targets /probe is asked for: a target idle
        # for `idle_evict` is forgotten (and `on_evict` told, for what others keep per target),
        # except the configured ones of /metrics.
        self._pinned = frozenset(pinned)
        self._on_evict = on_evict
        self._idle_evict = idle_evict
        self._next_eviction = 0.0
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._states: dict[tuple[Target, str], _State] = {}
        self._used: dict[Target, float] = {}  # clock() of the last scrape that asked for each target
        # Daemon workers: a sweep stuck on a hanging API must not hold the process at SIGTERM.
        self._workers = DaemonPool(workers * max(1, len(self._resources)), "dli-sweep")
        self.sweeps = 0  # scrapes that started at least one sweep
        self.cache_hits = 0  # scrapes answered wholly from cached or running sweeps

    def __repr__(self) -> str:
        return f"Sweeper(targets={len(self._used)}, resources={[r.name for r in self._resources]})"

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(r.name for r in self._resources)

    def get(self, targets: Sequence[Target], deadline: Deadline) -> Snapshot:
        """Each resource of each target, no older than it allows, waiting at most until ``deadline``."""
        results: dict[tuple[str, str], Result] = {}
        waiting: list[tuple[Target, str, _Sweep]] = []
        starting: list[tuple[Target, Swept, _Sweep]] = []
        with self._lock:
            now = self._clock()
            evicted = self._evict(now, set(targets)) if now >= self._next_eviction else []
            for target in targets:
                self._used[target] = now
                for resource in self._resources:
                    state = self._states.setdefault((target, resource.name), _State())
                    if state.latest is not None and now < state.fresh_until:
                        results[target.project_id, resource.name] = state.latest
                        continue
                    if state.sweep is None:
                        state.sweep = _Sweep()
                        starting.append((target, resource, state.sweep))
                    waiting.append((target, resource.name, state.sweep))
            if starting:
                self.sweeps += 1
            else:
                self.cache_hits += 1
        for target in evicted:
            if self._on_evict is not None:
                self._on_evict(target)
        for target, resource, sweep in starting:
            # The resources in their order of registration: the jobs first, which every scrape shows.
            self._workers.submit(self._run, target, resource, sweep, deadline,
                                 priority=self._resources.index(resource))
        for target, name, sweep in waiting:
            results[target.project_id, name] = self._wait(sweep, deadline)
        with self._lock:
            last = {(t.project_id, r.name): s.last_success for t in targets for r in self._resources
                    if (s := self._states.get((t, r.name))) is not None and s.last_success is not None}
        return Snapshot(results, last)

    def _evict(self, now: float, wanted: set[Target]) -> list[Target]:
        """Forget targets idle for ``idle_evict`` but ``wanted`` (under the lock); checked once a
        minute at most."""
        self._next_eviction = now + min(60.0, self._idle_evict)
        idle = [t for t, used in self._used.items() if t not in self._pinned and t not in wanted
                and now - used >= self._idle_evict and not self._running(t)]
        for target in idle:
            del self._used[target]
            for resource in self._resources:
                self._states.pop((target, resource.name), None)
        return idle

    def _running(self, target: Target) -> bool:
        return any(s.sweep is not None for r in self._resources if (s := self._states.get((target, r.name))))

    def _wait(self, sweep: _Sweep, deadline: Deadline) -> Result:
        if sweep.done.wait(deadline.left() + HANDOVER) and sweep.result is not None:
            return sweep.result
        return Result.down(WAITED_TOO_LONG, 0.0, self._wall())

    def _run(self, target: Target, resource: Swept, sweep: _Sweep, deadline: Deadline) -> None:
        started = self._clock()
        try:
            result = resource.read(target, deadline)
        except Exception as exc:  # noqa: BLE001  (a bug must not leave the scrapes that wait without an answer)
            log.error("sweep failed unexpectedly", extra={"project_id": target.project_id, "resource": resource.name,
                                                          "error": repr(exc)})
            result = Result.down(f"internal error: {exc!r}", self._clock() - started, self._wall())
        with self._lock:
            state = self._states.setdefault((target, resource.name), _State())
            state.latest, state.fresh_until, state.sweep = result, self._clock() + resource.reuse_for(result), None
            if result.ok:
                state.last_success = result.finished_at
            sweep.result = result
        sweep.done.set()

    def pin(self, targets: Iterable[Target]) -> None:
        """Keep ``targets`` however long nobody asks for them: the configured projects, and those a
        look-up found (one it no longer finds is forgotten once idle, as a probed one is)."""
        with self._lock:
            self._pinned = frozenset(targets)

    @property
    def target_count(self) -> int:
        """Targets with state here: the configured ones, and those probed within ``idle_evict``."""
        with self._lock:
            return len(self._used)

    def close(self) -> None:
        self._workers.shutdown()
