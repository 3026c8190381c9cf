"""The DLI side assembled: transport, authentication, hold-back and reader, and their shutdown.

Above this, reading a list of a target is ``DliApi.read(target, request, deadline)``: a function
of the target, the list and the deadline that returns a result and never raises for the API's
sake. It is built from plain values (the wiring takes them from the settings, which this side
never sees).
"""

from __future__ import annotations

import time
from typing import Any

from ..domain import Clock, Deadline, Result, Target
from ..workers import DaemonPool
from . import auth
from .holdback import Holdback
from .reader import ListRequest, Reader
from .transport import MAX_RESPONSE_BYTES, Counter, Transport


class DliApi:
    """Reads targets' lists for the process; one instance serves it."""

    def __init__(self, *, method: str, options: dict[str, Any], counter: Counter, timeout: float = 10.0,
                 retries: int = 3, concurrency: int = 8, max_bytes: int = MAX_RESPONSE_BYTES,
                 clock: Clock = time.monotonic) -> None:
        self.transport = Transport(timeout=timeout, retries=retries, pool_size=concurrency + 2, counter=counter,
                                   max_bytes=max_bytes, clock=clock)
        self.auth = auth.build(method, options, transport=self.transport, counter=counter)
        # One hold-back for the credential: the gateway counts a key's failures whatever the project.
        self.holdback = Holdback(self.auth.describe(), clock=clock)
        # Pages of all targets share these workers: at most `concurrency` calls in flight.
        # Daemon workers: a call stuck on a hanging API must not hold the process at SIGTERM.
        self._pages = DaemonPool(concurrency, "dli-page")
        self.reader = Reader(self.transport, self.auth.authorizer, self.holdback, self._pages, clock=clock)

    def __repr__(self) -> str:
        return f"DliApi({self.auth!r})"

    def read(self, target: Target, request: ListRequest, deadline: Deadline) -> Result:
        return self.reader.read(target, request, deadline)

    def forget(self, target: Target) -> None:
        """Drop what the DLI side keeps of ``target`` (its IAM token)."""
        self.auth.forget(target.project_id)

    def close(self) -> None:
        self.transport.close()
        self._pages.shutdown()
