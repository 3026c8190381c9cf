"""The DLI side assembled from settings: transport, credentials and reader, and their shutdown.

Below the HTTP server, a sweep of a target is ``DliApi.read(target, view, deadline)``: a
function of the target, the view and the deadline that returns a result and never raises for
the API's sake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..domain import ProjectResult, Target, View
from ..settings import Settings
from ..workers import DaemonPool
from .credentials import Credentials, IamLogin, LoginStats
from .holdback import Holdback
from .reader import Reader
from .transport import CallStats, Transport


class Stats(CallStats, LoginStats, Protocol):
    """Everything the DLI side counts."""


class DliApi:
    """Reads targets for the process; one instance serves it."""

    def __init__(self, settings: Settings, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = Transport(timeout=settings.request_timeout_seconds, retries=settings.retries,
                                   pool_size=settings.concurrency + 2, stats=stats,
                                   max_bytes=settings.max_response_bytes, clock=clock)
        self.credentials = Credentials({settings.credential: settings.secret}, IamLogin(self.transport, stats))
        # Pages of all targets share these workers: at most `concurrency` calls in flight.
        # Daemon workers: a call stuck on a hanging API must not hold the process at SIGTERM.
        self._pages = DaemonPool(settings.concurrency, "dli-page")
        # One hold-back for the process: the gateway counts a key's failures whatever the project.
        self.holdback = Holdback(clock=clock)
        self.reader = Reader(self.transport, self.credentials, self._pages, settings.list_filters,
                             holdback=self.holdback, clock=clock)

    def __repr__(self) -> str:
        return f"DliApi({self.reader!r})"

    def read(self, target: Target, view: View, deadline: float) -> ProjectResult:
        return self.reader.read(target, view, deadline)

    def forget(self, target: Target) -> None:
        """Drop what the DLI side keeps of ``target`` (its IAM token)."""
        self.credentials.forget(target)

    def close(self) -> None:
        self.transport.close()
        self._pages.shutdown()
