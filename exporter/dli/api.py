"""The DLI side assembled: transport, authentication, hold-back and reader, and their shutdown.

Above this, reading a list of a target is ``DliApi.read(target, request, deadline)``: a function
of the target, the list and the deadline that returns a result and never raises for the API's
sake; the account's projects are ``DliApi.iam.projects(deadline)`` when an IAM endpoint is
given. It is built from plain values (the wiring takes them from the settings, which this side
never sees). A field a read left out of a record is counted (``dli_api_field_errors_total``) and
said in the log once per field and project.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

from ..domain import Clock, Deadline, FieldError, Result, Target
from ..workers import DaemonPool
from . import auth
from .holdback import Holdback
from .iam import Iam
from .reader import ListRequest, Reader
from .transport import MAX_RESPONSE_BYTES, Counter, Transport

log = logging.getLogger(__name__)


class DliApi:
    """Reads targets' lists for the process; one instance serves it."""

    def __init__(self, *, method: str, options: dict[str, Any], counter: Counter, timeout: float = 10.0,
                 retries: int = 3, concurrency: int = 8, max_bytes: int = MAX_RESPONSE_BYTES,
                 iam_endpoint: str = "", clock: Clock = time.monotonic) -> None:
        self._counter = counter
        self._told: set[tuple[str, str]] = set()  # (project, field) left out and already logged
        self._lock = threading.Lock()
        self.transport = Transport(timeout=timeout, retries=retries, pool_size=concurrency + 2, counter=counter,
                                   max_bytes=max_bytes, clock=clock)
        self.auth = auth.build(method, options, transport=self.transport, counter=counter)
        # One hold-back for the credential: the gateway counts a key's failures whatever the project.
        self.holdback = Holdback(self.auth.describe(), clock=clock)
        # Pages of all targets share these workers: at most `concurrency` calls in flight.
        # Daemon workers: a call stuck on a hanging API must not hold the process at SIGTERM.
        self._pages = DaemonPool(concurrency, "dli-page")
        self.reader = Reader(self.transport, self.auth.authorizer, self.holdback, self._pages, clock=clock)
        # The account's projects, when they are to be looked up (IAM's global endpoint, or the one given).
        self.iam = Iam(iam_endpoint, transport=self.transport, auth=self.auth, holdback=self.holdback) \
            if iam_endpoint else None

    def __repr__(self) -> str:
        return f"DliApi({self.auth!r})"

    def read(self, target: Target, request: ListRequest, deadline: Deadline) -> Result:
        result = self.reader.read(target, request, deadline)
        if result.field_errors:
            self._left_out(target.project_id, result.field_errors)
        return result

    def _left_out(self, project_id: str, errors: Sequence[FieldError]) -> None:
        """Count the fields left out, and log each the first time it is left out of the project."""
        first: dict[str, FieldError] = {}
        for field, count in Tally(error.field for error in errors).items():
            self._counter.left_out(project_id, field, count)
        for error in errors:
            first.setdefault(error.field, error)
        with self._lock:
            new = [error for field, error in first.items() if (project_id, field) not in self._told]
            self._told.update((project_id, error.field) for error in new)
        for error in new:
            log.warning("a field that could not be read was left out", extra={
                "project_id": project_id, "field": error.field, "problem": error.problem, "record": error.record})

    def forget(self, target: Target) -> None:
        """Drop what the DLI side keeps of ``target`` (its IAM token, the fields it was told of)."""
        self.auth.forget(target.project_id)
        with self._lock:
            self._told = {told for told in self._told if told[0] != target.project_id}

    def close(self) -> None:
        self.transport.close()
        self._pages.shutdown()
