"""One call to the API, within a deadline: the only module that imports ``requests``.

A call is sent over one pool of keep-alive connections, signed by the auth object it is given,
and its answer is put in one of four classes by :func:`~exporter.dli.errors.classify`, the one
place that decides:

* ok: the answer is parsed and returned;
* retry: no answer, a 5xx, a 429, a body that is not JSON, or an error code the API uses for its
  own hiccups (DLI.0999 with HTTP 400). Retried with full-jitter backoff, or after
  ``Retry-After``, never past the deadline. A 429 without ``Retry-After`` is not retried at all:
  the gateway counts requests per window (a minute), so a retry a moment later lands in the same
  window and burns quota. Its error carries ``resume_at``, the start of the next window (jittered),
  for the credential hold-back to wait for;
* auth: 401 or 403, or a token DLI cannot parse (DLI.0015 with HTTP 400). Retried once when the
  auth object can fetch a fresh credential (an IAM token), else reported at once;
* fatal: anything else, reported at once.

Every request's timeout is capped by what is left before the deadline, so no call outlives the
scrape that needs it. An answer is read as it arrives, and refused past
``DLI_EXPORTER_MAX_RESPONSE_BYTES``. Failures raise :class:`~exporter.dli.errors.DliApiError`,
which carries the HTTP status, the API's error code and message, and the ``X-Request-Id`` to
quote to support.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from .. import __version__
from . import schema
from .errors import DliApiError, Outcome, classify, retry_after_seconds

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = f"dli-exporter/{__version__}"
# Every header present is signed, so send only end-to-end ones: a proxy may rewrite the hop-by-hop
# Connection header (HTTP/1.1 keeps connections alive without it).
HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "application/json",
           "Accept-Encoding": "gzip"}
# An answer larger than this is refused (DLI_EXPORTER_MAX_RESPONSE_BYTES): a real page of 100
# jobs is about 80 KB, and one whose SQL scripts average 160 KB (some 3,000 lines each) fits.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
READ_CHUNK = 256 * 1024  # bytes read (after gzip) at a time, so the cap is checked as the answer arrives
MAX_RETRY_AFTER = 600.0  # never pause longer than this on a 429, whatever the server asks
THROTTLE_WINDOW = 60.0  # the gateway's throttling window when a 429 does not say (its default)
THROTTLE_JITTER = 0.1  # up to this share of a window added, so that replicas do not return together
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0


class PreparedRequestLike(Protocol):
    """What an auth object needs of a request (``requests.PreparedRequest`` fits)."""

    @property
    def method(self) -> str | None: ...

    @property
    def url(self) -> str | None: ...

    @property
    def headers(self) -> MutableMapping[str, str]: ...

    @property
    def body(self) -> bytes | str | None: ...


class Auth(Protocol):
    """Signs a request (the contract of a ``requests`` auth callable), and hears of its refusal."""

    def __call__(self, request: PreparedRequestLike) -> PreparedRequestLike: ...

    def reject(self, request_id: str) -> bool:
        """The last request sent with this auth was refused (401/403; ``request_id`` is the
        answer's): True when a fresh credential may succeed, so one more try is worth it."""
        ...


class CallStats(Protocol):
    """Where calls are counted (the exporter's self-metrics)."""

    def observe(self, project_id: str, code: str, seconds: float) -> None: ...

    def retried(self, project_id: str) -> None: ...


@dataclass(frozen=True)
class Answer:
    """A response that arrived: status, reason phrase, headers, JSON body (None if not JSON), id."""

    status: int
    reason: str
    headers: Mapping[str, str]
    payload: Any
    request_id: str

    def error(self, now: float) -> DliApiError:
        """The error this answer stands for, when it is not what was asked for. ``now``: epoch
        seconds, for a ``Retry-After`` given as a date."""
        code, msg = schema.error_fields(self.payload)
        retry_after = None
        if self.status == 429:
            retry_after = retry_after_seconds(self.headers.get(schema.RETRY_AFTER_HEADER), now)
        return DliApiError(msg or self.reason or "error", classify(self.status, code, parsed=False),
                           status=self.status, error_code=code, request_id=self.request_id, retry_after=retry_after)


class Transport:
    """Calls to the DLI and IAM APIs over one pool of keep-alive connections. Thread-safe."""

    def __init__(self, *, timeout: float, retries: int, pool_size: int, stats: CallStats,
                 max_bytes: int = MAX_RESPONSE_BYTES, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._retries = retries
        self._stats = stats
        self._clock = clock
        self._wall = wall
        self._closed = threading.Event()
        # requests' transport adapter without a Session: no cookies, no proxies from the
        # environment (a stray variable must not reroute signed calls), no redirects, no hooks.
        # A Session would merge all of that into every call, about 200 µs of CPU a page.
        self._adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)

    def __repr__(self) -> str:
        return f"Transport(timeout={self._timeout}, retries={self._retries})"

    def fetch(self, url: str, *, project_id: str, auth: Auth, deadline: float, parse: Callable[[Any], T]) -> T:
        """GET ``url`` and ``parse`` its JSON, retrying as :func:`classify` says, until ``deadline``.

        ``parse`` may raise :class:`schema.PayloadError`; its code classifies it like an error
        answer's (an ``is_success`` false with DLI.0999 is worth a retry)."""
        attempt = 0
        renewed = False
        while True:
            try:
                return self._fetch_once(url, project_id, auth, deadline, parse)
            except DliApiError as err:
                if err.outcome is Outcome.AUTH and not renewed and auth.reject(err.request_id):
                    renewed = True  # e.g. an IAM token expired or was revoked: one more try with a fresh one
                    continue
                if err.outcome is not Outcome.RETRY:
                    raise
                delay = self._delay(attempt, err.retry_after)
                if err.status == 429:
                    err.resume_at = self._clock() + (delay if err.retry_after is not None else self._next_window())
                    if err.retry_after is None:
                        raise  # the same window would refuse a retry: wait for the next (the hold-back does)
                if attempt >= self._retries or self._clock() + delay >= deadline:
                    raise
                log.debug("retrying", extra={"project_id": project_id, "delay": round(delay, 2), "error": str(err)})
                self._stats.retried(project_id)
                attempt += 1
                if self._closed.wait(delay):
                    raise

    def _fetch_once(self, url: str, project_id: str, auth: Auth, deadline: float, parse: Callable[[Any], T]) -> T:
        request = _prepare("GET", url, {schema.PROJECT_HEADER: project_id}, None)
        auth(request)  # signs every header present, so it comes last; an IAM login is not an API call
        timeout = self._time_left(deadline, self._timeout)
        started = self._clock()
        try:
            answer = self._send(request, timeout=timeout)
        except DliApiError as err:
            # An answer that came but was refused (too large) counts under its status.
            self._stats.observe(project_id, str(err.status) if err.status else "error", self._clock() - started)
            raise
        self._stats.observe(project_id, str(answer.status), self._clock() - started)
        if answer.status != 200:
            raise answer.error(self._wall())
        if answer.payload is None:
            raise DliApiError("the answer is not valid JSON", classify(200, decoded=False), status=200,
                              request_id=answer.request_id)
        try:
            return parse(answer.payload)
        except schema.PayloadError as exc:
            raise DliApiError(str(exc), classify(200, exc.code, parsed=False), status=200, error_code=exc.code,
                              request_id=answer.request_id) from None

    def post(self, url: str, body: bytes, *, deadline: float) -> Answer:
        """One POST (an IAM login), no retries: the call that needs it retries as a whole.

        Raises DliApiError when no answer came; an answer of any status is returned."""
        return self._send(_prepare("POST", url, {}, body), timeout=self._time_left(deadline, min(self._timeout, 10.0)))

    def _time_left(self, deadline: float, cap: float) -> float:
        """A call's timeout: what is left before ``deadline``, at most ``cap``; an error when nothing is."""
        remaining = deadline - self._clock()
        if remaining <= 0 or self._closed.is_set():
            raise DliApiError("scrape deadline reached before the call was made", Outcome.FATAL)
        return min(cap, remaining)

    def _send(self, request: requests.PreparedRequest, *, timeout: float) -> Answer:
        try:
            # Never redirected (the adapter does not follow): a Location header must not take the
            # token or the password elsewhere. The API never redirects; a 3xx is an error.
            resp = self._adapter.send(request, timeout=timeout, stream=True)
            try:
                content = self._read_capped(resp)
            finally:
                resp.close()  # after a refused answer this drops the connection: the rest is never read
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            host = urlsplit(request.url or "").netloc
            raise DliApiError(describe_connection_error(exc, host, timeout), classify(None)) from None
        payload = _json_or_none(content)
        request_id = resp.headers.get(schema.REQUEST_ID_HEADER, "") or schema.error_request_id(payload)
        return Answer(resp.status_code, resp.reason or "", resp.headers, payload, request_id)

    def _read_capped(self, resp: requests.Response) -> bytearray:
        """The body, decompressed, read a chunk at a time; a DliApiError (no retry: the next
        answer would be as large) as soon as it is larger than the cap, declared or not."""
        declared = resp.headers.get("Content-Length", "")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if declared.isdigit() and not encoded and int(declared) > self._max_bytes:
            raise self._too_large(resp)
        content = bytearray()
        while chunk := resp.raw.read(READ_CHUNK, decode_content=True):
            content += chunk
            if len(content) > self._max_bytes:
                raise self._too_large(resp)
        return content

    def _too_large(self, resp: requests.Response) -> DliApiError:
        return DliApiError(f"the answer is larger than {self._max_bytes} bytes (DLI_EXPORTER_MAX_RESPONSE_BYTES); "
                           "it was not read further", Outcome.FATAL, status=resp.status_code,
                           request_id=resp.headers.get(schema.REQUEST_ID_HEADER, ""))

    @staticmethod
    def _next_window() -> float:
        """Seconds until a throttled credential may call again when the 429 did not say."""
        return THROTTLE_WINDOW * (1 + random.uniform(0, THROTTLE_JITTER))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        # Full jitter (AWS architecture blog): spreads the retries of concurrent pages apart.
        return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))

    def close(self) -> None:
        """Stop retrying and waiting, and close the connections."""
        self._closed.set()
        self._adapter.close()


def _prepare(method: str, url: str, headers: dict[str, str], body: bytes | None) -> requests.PreparedRequest:
    request = requests.PreparedRequest()
    request.prepare_method(method)
    request.prepare_url(url, None)
    request.prepare_headers({**HEADERS, **headers})
    request.prepare_body(body, None)
    return request


def _json_or_none(content: bytes | bytearray) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    # What orjson refuses and json reads (lone surrogates, NaN), json reads: the answer means the
    # same either way. (Integers past 64 bits orjson reads as floats; the schema refuses both.)
    try:
        return json.loads(content)
    except ValueError:
        return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what lies under it (requests wraps urllib3 wraps socket and ssl), each once."""
    found: list[BaseException] = []
    seen: set[int] = set()
    stack = [exc]
    while stack and len(found) < 50:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        for under in (getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(under, BaseException):
                stack.append(under)
    return found


def describe_connection_error(exc: BaseException, host: str, timeout: float | None = None) -> str:
    """Why no answer came from ``host``, in a few words: DNS, refused, TLS verification, timeout,
    reset. Never the URL's query or a header."""
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS verification of {host} failed: {cause.verify_message or cause.reason or 'untrusted'}"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup of {host.rsplit(':', 1)[0]} failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {host} refused"
    for cause in causes:  # urllib3's name error, when the socket error under it is not at hand
        if isinstance(cause, urllib3.exceptions.NameResolutionError):
            return f"DNS lookup of {host.rsplit(':', 1)[0]} failed"
    for cause in causes:
        if isinstance(cause, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
            return f"connecting to {host} timed out" + (f" after {timeout:g} s" if timeout else "")
        if isinstance(cause, requests.Timeout | urllib3.exceptions.TimeoutError | socket.timeout):
            return f"{host} did not answer in time" + (f" ({timeout:g} s)" if timeout else "")
        if isinstance(cause, ssl.SSLError):
            return f"TLS with {host} failed: {cause.reason or type(cause).__name__}"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return f"connection to {host} reset"
        if isinstance(cause, urllib3.exceptions.ProtocolError | http.client.HTTPException):
            return f"{host} closed the connection without a valid answer"
    if isinstance(exc, requests.ConnectionError):
        return f"connection to {host} failed"
    return f"{type(exc).__name__} from {host}"
