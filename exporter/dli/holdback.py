"""The credential hold-back: never lock a key, never call twice in a throttled window.

The API gateway locks an access key for 5 minutes after 5 consecutive authentication failures,
counted per key whichever project they were for. A wrong or rotated key must therefore not be
tried on every page of every project on every scrape. Per credential, this module keeps:

* **trust**: after start-up and after each hold, the first call made with a credential goes alone;
  calls for other projects wait for its answer. An answer that got past the gateway's
  authentication (anything but 401/403 or an auth error code) makes the credential trusted, and
  its calls then run in parallel.
* **hold**: after an authentication failure no call is made with the credential for at least
  :data:`HOLD_MIN` seconds, doubling with each failed try up to :data:`HOLD_MAX`; a success
  resets it. One log line per hold says when it will be tried again. Calls in flight when the
  failure arrives may fail too (at most ``DLI_EXPORTER_CONCURRENCY`` of them); none starts after.
* **pause**: after a 429 the credential waits until the transport's ``resume_at`` (the
  ``Retry-After``, or the next throttling window), so no second call lands in the same window.

A call refused here raises :class:`DliApiError` with :attr:`Outcome.HELD`, without touching the
network: the project is reported down for that sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..domain import Credential
from .errors import DliApiError, Outcome

log = logging.getLogger(__name__)

HOLD_MIN = 60.0  # seconds a refused credential is held back at first
HOLD_MAX = 300.0  # the longest hold: the gateway's own lock lasts 5 minutes


@dataclass
class _State:
    wake: threading.Condition
    trusted: bool = False
    probing: bool = False  # a lone first call is in flight
    held_until: float = 0.0  # clock(): no calls before
    hold: float = HOLD_MIN  # the next hold's length
    paused_until: float = 0.0  # clock(): throttled until
    reason: str = ""  # why it is held or paused: the error, for the errors of refused calls


class Holdback:
    """Admits or refuses calls per credential. Thread-safe."""

    def __init__(self, *, hold_min: float | None = None, hold_max: float | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._hold_min = HOLD_MIN if hold_min is None else hold_min
        self._hold_max = HOLD_MAX if hold_max is None else hold_max
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._states: dict[Credential, _State] = {}

    def __repr__(self) -> str:
        return f"Holdback(credentials={len(self._states)})"

    def _state(self, credential: Credential) -> _State:
        with self._lock:
            state = self._states.get(credential)
            if state is None:
                state = self._states[credential] = _State(threading.Condition(), hold=self._hold_min)
            return state

    @contextmanager
    def call(self, credential: Credential, deadline: float, project_id: str = "") -> Iterator[None]:
        """Around one call with ``credential``: refuses it (DliApiError, HELD) while the credential
        is held or paused, waits while another call probes it, and learns from how the call ends.
        The error that starts a hold or a pause is logged here, once, and marked ``logged``."""
        state = self._state(credential)
        probe = self._admit(state, deadline)
        try:
            yield
        except DliApiError as exc:
            self._learn(state, credential, probe, exc, project_id=project_id)
            raise
        except BaseException:
            self._learn(state, credential, probe, None, project_id=project_id, verdict=False)
            raise
        else:
            self._learn(state, credential, probe, None, project_id=project_id)

    def _admit(self, state: _State, deadline: float) -> bool:
        """True when this call is the lone probe; False when the credential is trusted."""
        with state.wake:
            while True:
                now = self._clock()
                if now < state.held_until:
                    raise DliApiError(f"not sent: the credential is held back for {state.held_until - now:.0f} s "
                                      f"more after: {state.reason}", Outcome.HELD)
                if now < state.paused_until:
                    raise DliApiError(f"not sent: throttled, waiting {state.paused_until - now:.0f} s "
                                      f"for the next window after: {state.reason}", Outcome.HELD)
                if state.trusted:
                    return False
                if not state.probing:
                    state.probing = True
                    return True
                # Another call is trying the credential: wait for its answer.
                if not state.wake.wait(timeout=max(0.0, deadline - now)) and self._clock() >= deadline:
                    raise DliApiError("scrape deadline reached while the credential was being tried",
                                      Outcome.FATAL)

    def _learn(self, state: _State, credential: Credential, probe: bool, exc: DliApiError | None, *,
               project_id: str, verdict: bool = True) -> None:
        with state.wake:
            if probe:
                state.probing = False
            if exc is None and verdict:
                state.trusted, state.hold = True, self._hold_min
            elif exc is not None and exc.outcome is Outcome.AUTH:
                self._hold(state, credential, exc, project_id)
            elif exc is not None and exc.status == 429 and exc.resume_at is not None:
                if exc.resume_at > state.paused_until:
                    state.paused_until, state.reason = exc.resume_at, str(exc)
                    exc.logged = True
                    log.warning("throttled: no calls with this credential until the next window", extra={
                        "credential": repr(credential), "project_id": project_id,
                        "resume_in": round(exc.resume_at - self._clock(), 1), "error": str(exc),
                        "error_code": exc.error_code, "request_id": exc.request_id})
            elif exc is not None and exc.status is not None and exc.outcome is not Outcome.HELD:
                state.trusted, state.hold = True, self._hold_min  # the gateway let it through
            state.wake.notify_all()

    def _hold(self, state: _State, credential: Credential, exc: DliApiError, project_id: str) -> None:
        now = self._clock()
        state.trusted = False
        if now < state.held_until:
            return  # another call in flight failed with it: one hold, one log line (the reader logs the call)
        state.held_until, state.reason = now + state.hold, str(exc)
        exc.logged = True
        log.warning("authentication failed: holding the credential back", extra={
            "credential": repr(credential), "project_id": project_id, "error": str(exc),
            "status": exc.status or "", "error_code": exc.error_code, "request_id": exc.request_id,
            "retry_in": round(state.hold),
            "retry_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._wall() + state.hold))})
        state.hold = min(state.hold * 2, self._hold_max)

