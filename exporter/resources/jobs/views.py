"""The job list's two views of a target, read on their own cadences and merged by job id.

The API splits job fields between views (see dli-api.md): status, duration, restarts and user
come with the summary view, ``run_mode`` and ``job_config`` with the detail view. The first
change every minute, the second rarely, so:

* every sweep reads the summary view: status, duration and restarts are never older than it;
* the detail view is read with the first sweep of a target (that sweep waits for both, read side
  by side), then in the background every ``interval`` seconds: no later scrape waits for it, and
  such a refresh runs under a deadline of its own, not the scrape's that started it;
* a read is started early, at most once a minute, when the summary lists jobs the detail view has
  not shown yet, so a new job gets its ``run_mode`` soon;
* a failed detail read keeps the previous detail data (tried again after a minute); ``dli_up``
  describes the summary sweep alone, and the result says when the detail view last succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass, field, replace

from ...dli.reader import ListRequest
from ...domain import Clock, Deadline, Result, Target
from ...workers import DaemonPool
from .record import Job, merge

NEVER = 0.0  # dli_detail_last_success_timestamp_seconds of a detail view never read completely
log = logging.getLogger(__name__)

EARLY_READ_GAP = 60.0  # at most one early detail read a minute, for jobs the detail view has not shown
RETRY_AFTER_FAILURE = 60.0  # a failed detail read is tried again after this long (or the interval, if shorter)
BACKGROUND_TIMEOUT = 120.0  # a background detail read's own deadline: no scrape waits for it

ReadList = Callable[[Target, ListRequest, Deadline], Result]


@dataclass
class _DetailState:
    """The detail view of one target, as last read."""

    jobs: dict[int, Job] = field(default_factory=dict)
    succeeded_at: float | None = None  # epoch seconds of the last read that succeeded
    due: float = 0.0  # clock(): when the next read is due; 0 before the first
    started: float | None = None  # clock(): when the last read started
    asked: frozenset[int] = frozenset()  # jobs unseen when the last read started: no early read for them again
    running: Future[Result] | None = None


class TwoViews:
    """Reads the job list of targets in both views (or the summary alone) and merges them;
    thread-safe. The source of the jobs resource."""

    def __init__(self, read: ReadList, summary: ListRequest, detail: ListRequest | None, *, interval: float,
                 workers: int, clock: Clock = time.monotonic) -> None:
        self._read = read
        self._summary = summary
        self._detail = detail
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[Target, _DetailState] = {}
        # Detail reads run here, so that the sweep that starts one does not wait for it.
        self._workers = DaemonPool(workers, "dli-detail") if detail is not None else None

    def __repr__(self) -> str:
        return f"TwoViews(detail={self._detail is not None}, interval={self._interval})"

    def read(self, target: Target, deadline: Deadline) -> Result:
        """One sweep of ``target``: its summary view now, merged with its detail view."""
        if self._workers is None:
            return self._read(target, self._summary, deadline)
        with self._lock:
            state = self._states.setdefault(target, _DetailState())
            first = state.started is None
            # The first sweep (or every sweep, with a zero interval) waits for its detail read,
            # which then runs under the scrape's deadline.
            waiting = self._start(target, state, deadline) if first or self._interval == 0 else None
        summary = self._read(target, self._summary, deadline)
        if waiting is not None:
            # Past the deadline the summary goes without it; the read finishes for the next sweep.
            with suppress(FutureTimeout):
                waiting.result(timeout=deadline.left())
        with self._lock:
            if summary.records is None:
                return replace(summary, detail_at=_detail_at(state))
            jobs, unseen = merge(summary.records, state.jobs)
            now = self._clock()
            # New jobs the detail view has not shown: read it early (once a minute at most), but
            # not again for jobs it left out last time (it may never show them).
            early = (bool(unseen) and state.started is not None and now - state.started >= EARLY_READ_GAP
                     and not state.asked.issuperset(unseen))
            if state.running is None and (now >= state.due or early):
                state.asked = frozenset(unseen)
                # In the background: under a deadline of its own, not this scrape's.
                self._start(target, state, Deadline.after(BACKGROUND_TIMEOUT, self._clock))
            return replace(summary, records=jobs, detail_at=_detail_at(state))

    def _start(self, target: Target, state: _DetailState, deadline: Deadline) -> Future[Result]:
        """Start a detail read unless one runs (under the lock); the read in flight either way."""
        if state.running is not None:
            return state.running
        if self._workers is None or self._detail is None:
            raise RuntimeError("the detail view is not read with show_detail false")
        state.started = self._clock()
        running = state.running = self._workers.submit(self._read_detail, target, self._detail, state, deadline)
        return running

    def _read_detail(self, target: Target, request: ListRequest, state: _DetailState, deadline: Deadline) -> Result:
        try:
            result = self._read(target, request, deadline)
        except Exception as exc:  # noqa: BLE001  (a bug must not stop the detail refreshes)
            log.error("detail read failed unexpectedly", extra={"project_id": target.project_id, "error": repr(exc)})
            result = Result.down(f"internal error: {exc!r}", 0.0)
        with self._lock:
            started = state.started if state.started is not None else self._clock()
            if result.records is not None:
                state.jobs = {job.job_id: job for job in result.records}
                state.succeeded_at = result.finished_at
                state.due = started + self._interval
            else:
                # The previous detail data stays; the reader logged why.
                state.due = started + min(self._interval, RETRY_AFTER_FAILURE)
            state.running = None
        return result

    def forget(self, target: Target) -> None:
        """Drop what is kept of ``target``'s detail view (it has gone unused)."""
        with self._lock:
            state = self._states.get(target)
            if state is not None and state.running is None:
                del self._states[target]

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown()


def _detail_at(state: _DetailState) -> float:
    """When the detail view was last read completely; NEVER (0) until it has been: a view that
    is read and never succeeds shows as older than any, which an alert can tell."""
    return state.succeeded_at if state.succeeded_at is not None else NEVER
