"""What tests tell the simulator (faults) and what it tells them back (recorded requests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One injected fault. It applies to requests of ``resource`` (``jobs``, ``queues``, or None
    for any) matching ``project_id`` and ``page`` (None: any); ``times`` is how many matching
    requests it hits (None: all of them). Each resource has its own faults: a fault of the jobs
    leaves the queues alone, and the reverse.

    kinds: ``error`` (``status`` with a DLI or API-gateway error body), ``rate_limit`` (429 with
    ``Retry-After: retry_after``, or ``retry_after_header`` as it is), ``truncate`` (a 200 whose
    JSON is cut short), ``hang`` (wait
    ``seconds`` before answering), ``latency`` (extra ``seconds``), ``drop`` (close the connection
    without an answer), ``sloppy_types`` (numbers and booleans as strings, some nulls: all
    still meaning the same), ``wrong_types`` (a value that cannot be read as its field's type),
    ``not_success`` (a 200 with ``is_success`` false), ``bad_shape`` (a 200 without a job list),
    ``bad_signature`` (the verifier holds another secret key for the caller's access key, as after
    a key rotation the exporter missed: a real 401 from the signature check), ``body`` (a 200
    whose body is ``body``, whatever it holds), ``oversize`` (a valid page of one job whose name
    is ``size`` bytes long, streamed without being held; with ``chunked``, without a
    Content-Length).
    """

    kind: str
    project_id: str | None = None
    resource: str | None = "jobs"
    page: int | None = None
    times: int | None = None
    status: int = 500
    error_code: str = "DLI.0999"
    error_msg: str = "Server system error."
    retry_after: float = 1.0
    retry_after_header: str | None = None
    seconds: float = 0.0
    body: bytes = b""
    size: int = 0
    chunked: bool = False

    def matches(self, resource: str, project_id: str | None, page: int | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.resource is not None and self.resource != resource:
            return False
        if self.project_id is not None and self.project_id != project_id:
            return False
        return self.page is None or self.page == page


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    peer: tuple[str, int] = ("", 0)  # the client's address: one per TCP connection
    request_id: str = ""  # the X-Request-Id the answer carried
    region: str = ""  # the region prefix of the path, if any
