"""What the API gateway does before DLI sees a request: the AK lock-out and request throttling.

Both as documented (dli-api.md, "Errors"), and no kinder:

* an access key is locked for ``lock_seconds`` (5 minutes) after ``lock_after`` (5) consecutive
  authentication failures, whichever project they were for; a locked key is refused with 401
  even when its signature is right, and a success resets the count;
* with a ``budget``, each caller (access key or token) may make that many requests per window of
  ``window`` seconds (windows aligned to the clock, as a minute is); beyond it, 429 APIGW.0308
  with no ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Gateway:
    """The gateway's state. Thread-safe; ``clock`` is epoch seconds."""

    def __init__(self, *, budget: int | None = None, window: float = 60.0, lock_after: int = 5,
                 lock_seconds: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.budget = budget
        self.window = window
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}  # access key -> consecutive authentication failures
        self._locked_until: dict[str, float] = {}
        self._counts: dict[tuple[str, int], int] = {}  # (caller, window number) -> requests
        self.lockouts = 0  # keys locked so far
        self.throttled = 0  # requests refused with 429

    def locked(self, ak: str) -> bool:
        with self._lock:
            return self._clock() < self._locked_until.get(ak, 0.0)

    def authenticated(self, ak: str, ok: bool) -> None:
        """Count an authentication of ``ak``: failures in a row lock it."""
        with self._lock:
            if ok:
                self._failures.pop(ak, None)
                return
            count = self._failures.get(ak, 0) + 1
            if count >= self.lock_after:
                self._locked_until[ak] = self._clock() + self.lock_seconds
                self.lockouts += 1
                count = 0
            self._failures[ak] = count

    def admit(self, caller: str) -> bool:
        """One request of ``caller`` in the current window: False when it is over the budget."""
        if self.budget is None:
            return True
        with self._lock:
            window = int(self._clock() // self.window)
            key = (caller, window)
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= window - 1}
            self._counts[key] = self._counts.get(key, 0) + 1
            if self._counts[key] > self.budget:
                self.throttled += 1
                return False
            return True
