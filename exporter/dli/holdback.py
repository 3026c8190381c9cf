"""The credential hold-back: never lock a key, never call twice in a throttled window.

The API gateway locks an access key for 5 minutes after 5 consecutive authentication failures,
counted per key whichever project they were for. A wrong or rotated key must therefore not be
tried on every page of every project on every scrape. For the process's credential, this module
keeps:

* **trust**: after start-up and after each hold, the first call made with the credential goes
  alone; calls for other projects wait for its answer. An answer that got past the gateway's
  authentication (anything but a 401 or an auth error code: a 403 too, which refuses one list of
  one project, not the key) makes the credential trusted, and its calls then run in parallel.
* **hold**: after an authentication failure no call is made with the credential for at least
  :data:`HOLD_MIN` seconds, doubling with each failed try up to :data:`HOLD_MAX`; a success
  resets it. One log line per hold says when it will be tried again. Calls in flight when the
  failure arrives may fail too (at most ``DLI_EXPORTER_CONCURRENCY`` of them); none starts after.
* **pause**: after a 429 the credential waits until the failure's ``resume_at`` (the
  ``Retry-After``, or the next throttling window), so no second call lands in the same window.

A call refused here is not sent: :meth:`Holdback.call` returns a :class:`Failure` with
:attr:`Outcome.HELD` without touching the network, and the project is reported down for that
sweep. What the hold-back knows is its own state; callers learn it from what :meth:`call` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from ..domain import Clock, Deadline
from .errors import Failure, Outcome

log = logging.getLogger(__name__)

T = TypeVar("T")

HOLD_MIN = 60.0  # seconds a refused credential is held back at first
HOLD_MAX = 300.0  # the longest hold: the gateway's own lock lasts 5 minutes


class Holdback:
    """Admits or refuses the calls of one credential (``credential`` names it in logs). Thread-safe."""

    def __init__(self, credential: str, *, hold_min: float | None = None, hold_max: float | None = None,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._credential = credential
        self._hold_min = HOLD_MIN if hold_min is None else hold_min
        self._hold_max = HOLD_MAX if hold_max is None else hold_max
        self._clock = clock
        self._wall = wall
        self._wake = threading.Condition()
        self._trusted = False
        self._probing = False  # a lone first call is in flight
        self._held_until = 0.0  # clock(): no calls before
        self._hold = self._hold_min  # the next hold's length
        self._paused_until = 0.0  # clock(): throttled until
        self._reason = ""  # why it is held or paused: the failure, for the failures of refused calls
        self._rejected = False  # refused by the gateway, and not let through since

    def __repr__(self) -> str:
        return f"Holdback({self._credential}, trusted={self._trusted})"

    @property
    def rejected(self) -> bool:
        """The credential was refused (an authentication failure) and no call has got through
        since: calls are held back, and each hold ends with one more try (dli_credential_held)."""
        with self._wake:
            return self._rejected

    @property
    def held_until(self) -> float | None:
        """clock() until which no call is made (a hold or a throttling pause); None when calls may go."""
        with self._wake:
            until = max(self._held_until, self._paused_until)
            return until if until > self._clock() else None

    def call(self, deadline: Deadline, project_id: str, send: Callable[[], T | Failure]) -> T | Failure:
        """``send()`` if the credential may be used now, learning from what it gives; else a
        Failure (HELD) saying why and for how long, without sending. The failure that starts a
        hold or a pause is logged here, once, and comes back marked ``logged``."""
        admitted = self._admit(deadline)
        if isinstance(admitted, Failure):
            return admitted
        try:
            got = send()
        except BaseException:
            self._settle(admitted, None, project_id, broke=True)
            raise
        return self._settle(admitted, got, project_id) or got

    def _admit(self, deadline: Deadline) -> bool | Failure:
        """True when this call is the lone probe; False when the credential is trusted."""
        with self._wake:
            while True:
                now = self._clock()
                if now < self._held_until:
                    return Failure(Outcome.HELD, f"not sent: the credential is held back for "
                                   f"{self._held_until - now:.0f} s more after: {self._reason}")
                if now < self._paused_until:
                    return Failure(Outcome.HELD, f"not sent: throttled, waiting {self._paused_until - now:.0f} s "
                                   f"for the next window after: {self._reason}")
                if self._trusted:
                    return False
                if not self._probing:
                    self._probing = True
                    return True
                # Another call is trying the credential: wait for its answer.
                if not self._wake.wait(timeout=deadline.left()) and deadline.passed:
                    return Failure(Outcome.FATAL, "scrape deadline reached while the credential was being tried")

    def _settle(self, probe: bool, got: object, project_id: str, *, broke: bool = False) -> Failure | None:
        """Learn from how a call ended (``broke``: it raised, which says nothing of the credential);
        a failure as it was handled."""
        with self._wake:
            if probe:
                self._probing = False
            handled = None
            if isinstance(got, Failure):
                handled = self._learn(got, project_id)
            elif not broke:
                self._let_through()
            self._wake.notify_all()
        return handled

    def _learn(self, failure: Failure, project_id: str) -> Failure:
        if failure.outcome is Outcome.AUTH:
            return self._start_hold(failure, project_id)
        if failure.throttled and failure.resume_at is not None:
            if failure.resume_at <= self._paused_until:
                return failure
            self._paused_until, self._reason = failure.resume_at, str(failure)
            log.warning("throttled: no calls with this credential until the next window", extra={
                "credential": self._credential, "project_id": project_id,
                "resume_in": round(failure.resume_at - self._clock(), 1), **failure.log_fields()})
            return replace(failure, logged=True)
        if failure.status is not None and failure.outcome is not Outcome.HELD:
            self._let_through()  # the gateway let it through, whatever the API said then
        return failure

    def _let_through(self) -> None:
        """A call got past the gateway: the credential is good, the next hold starts short again."""
        self._trusted, self._hold, self._rejected = True, self._hold_min, False

    def _start_hold(self, failure: Failure, project_id: str) -> Failure:
        now = self._clock()
        self._trusted, self._rejected = False, True
        if now < self._held_until:
            # Another call in flight failed with it: one hold, one log line (already said).
            return replace(failure, logged=True)
        self._held_until, self._reason = now + self._hold, str(failure)
        log.warning("authentication failed: holding the credential back", extra={
            "credential": self._credential, "project_id": project_id, **failure.log_fields(),
            "retry_in": round(self._hold),
            "retry_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._wall() + self._hold))})
        self._hold = min(self._hold * 2, self._hold_max)
        return replace(failure, logged=True)
