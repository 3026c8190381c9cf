"""The list API's two views of a target, read on their own cadences and merged by job id.

The API splits job fields between views (see dli-api.md): status, duration, restarts and user
come with the summary view, ``run_mode`` and ``job_config`` with the detail view. The first
change every minute, the second rarely, so:

* every sweep reads the summary view: status, duration and restarts are never older than it;
* the detail view is read with the first sweep of a target (that sweep waits for both, read side
  by side), then in the background every ``interval`` seconds: no later scrape waits for it;
* a read is started early, at most once a minute, when the summary lists jobs the detail view has
  not shown yet, so a new job gets its ``run_mode`` soon;
* a failed detail read keeps the previous detail data (tried again after a minute); ``dli_up``
  describes the summary sweep alone, and the result says when the detail view last succeeded.

:func:`merge` is the pure part: each field from the view that carries it, the summary's first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass, field, replace

from .domain import Job, ProjectResult, Target, View
from .workers import DaemonPool

log = logging.getLogger(__name__)

EARLY_READ_GAP = 60.0  # at most one early detail read a minute, for jobs the detail view has not shown
RETRY_AFTER_FAILURE = 60.0  # a failed detail read is tried again after this long (or the interval, if shorter)
BACKGROUND_TIMEOUT = 120.0  # a background detail read's own deadline: no scrape waits for it
MAX_WORKERS = 16

Read = Callable[[Target, View, float], ProjectResult]


def merge(summary: list[Job], detail: Mapping[int, Job]) -> tuple[list[Job], list[int]]:
    """The summary's jobs with the detail view's fields filled in, and the ids of the jobs the
    detail view has not shown. Status and duration are always the summary's (never older than its
    sweep); every other field is the summary's when it carries one, else the detail view's.

    The summary's jobs are filled in place: they are the sweep's own, parsed moments ago and not
    yet seen by anyone (building new ones would cost a third more, once per job per sweep). The
    detail view's jobs are never changed: later sweeps merge them again."""
    unseen: list[int] = []
    get = detail.get
    for job in summary:
        more = get(job.job_id)
        if more is None:
            unseen.append(job.job_id)
            continue
        # The detail view's own fields first (the summary view never has them), then what
        # either may lack.
        if not job.run_mode:
            job.run_mode = more.run_mode
        if job.config is None:
            job.config = more.config
        if not job.user_name:
            job.user_name = more.user_name
        if not job.queue:
            job.queue = more.queue
        if job.start_time_ms is None:
            job.start_time_ms = more.start_time_ms
        if job.restarts is None:
            job.restarts = more.restarts
        if job.savepoint is None:
            job.savepoint = more.savepoint
        if job.create_time_ms is None:
            job.create_time_ms = more.create_time_ms
        if not job.name:
            job.name = more.name
        if not job.job_type:
            job.job_type = more.job_type
    return summary, unseen


@dataclass
class _Detail:
    """The detail view of one target, as last read."""

    jobs: dict[int, Job] = field(default_factory=dict)
    succeeded_at: float | None = None  # epoch seconds of the last read that succeeded
    due: float = 0.0  # clock(): when the next read is due; 0 before the first
    started: float | None = None  # clock(): when the last read started
    asked: frozenset[int] = frozenset()  # jobs unseen when the last read started: no early read for them again
    flight: Future[ProjectResult] | None = None


class Views:
    """Reads targets in both views (or the summary alone) and merges them; thread-safe."""

    def __init__(self, read: Read, *, detail: bool, interval: float, workers: int = MAX_WORKERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._detail = detail
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[Target, _Detail] = {}
        # Detail reads run here, so that the sweep that starts one does not wait for it.
        self._workers = DaemonPool(max(1, min(MAX_WORKERS, workers)), "dli-detail") if detail else None

    def __repr__(self) -> str:
        return f"Views(detail={self._detail}, interval={self._interval})"

    def read(self, target: Target, deadline: float) -> ProjectResult:
        """One sweep of ``target``: its summary view now, merged with its detail view."""
        if self._workers is None:
            return self._read(target, View.SUMMARY, deadline)
        with self._lock:
            state = self._states.setdefault(target, _Detail())
            first = state.started is None
            waiting = self._start(target, state, deadline) if first or self._interval == 0 else None
        summary = self._read(target, View.SUMMARY, deadline)
        if waiting is not None:
            # The first sweep (or every sweep, with a zero interval) waits for its detail read.
            # Past the deadline the summary goes without it; the read finishes for the next sweep.
            with suppress(FutureTimeout):
                waiting.result(timeout=max(0.0, deadline - self._clock()))
        with self._lock:
            if summary.jobs is None:
                return replace(summary, detail_at=state.succeeded_at)
            jobs, unseen = merge(summary.jobs, state.jobs)
            now = self._clock()
            # New jobs the detail view has not shown: read it early (once a minute at most), but
            # not again for jobs it left out last time (it may never show them).
            early = (bool(unseen) and state.started is not None and now - state.started >= EARLY_READ_GAP
                     and not state.asked.issuperset(unseen))
            if state.flight is None and (now >= state.due or early):
                state.asked = frozenset(unseen)
                self._start(target, state, now + BACKGROUND_TIMEOUT)
            return replace(summary, jobs=jobs, detail_at=state.succeeded_at)

    def _start(self, target: Target, state: _Detail, deadline: float) -> Future[ProjectResult]:
        """Start a detail read unless one runs (under the lock); the read in flight either way."""
        if state.flight is not None:
            return state.flight
        if self._workers is None:
            raise RuntimeError("the detail view is not read with show_detail false")
        state.started = self._clock()
        flight = state.flight = self._workers.submit(self._read_detail, target, state, deadline)
        return flight

    def _read_detail(self, target: Target, state: _Detail, deadline: float) -> ProjectResult:
        try:
            result = self._read(target, View.DETAIL, deadline)
        except Exception as exc:  # noqa: BLE001  (a bug must not stop the detail refreshes)
            log.error("detail read failed unexpectedly", extra={"project_id": target.project_id, "error": repr(exc)})
            result = ProjectResult.down(target.project_id, f"internal error: {exc!r}", 0.0, time.time())
        with self._lock:
            started = state.started if state.started is not None else self._clock()
            if result.jobs is not None:
                state.jobs = {job.job_id: job for job in result.jobs}
                state.succeeded_at = result.finished_at
                state.due = started + self._interval
            else:
                # The previous detail data stays; the reader logged why.
                state.due = started + min(self._interval, RETRY_AFTER_FAILURE)
            state.flight = None
        return result

    def forget(self, target: Target) -> None:
        """Drop what is kept of ``target``'s detail view (it has gone unused)."""
        with self._lock:
            state = self._states.get(target)
            if state is not None and state.flight is None:
                del self._states[target]

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown()
