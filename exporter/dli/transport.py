"""One call to the API, within a deadline: the only module that imports ``requests``.

A call is sent over one pool of keep-alive connections, signed by the authorizer it is given, and
its answer is put in one of four classes by :func:`~exporter.dli.errors.classify`, the one place
that decides:

* ok: the answer is parsed and returned;
* retry: no answer, a 5xx, a 429, a body that is not JSON, or an error code the API uses for its
  own hiccups (DLI.0999 with HTTP 400). Retried with full-jitter backoff, or after
  ``Retry-After``, never past the deadline. A 429 without ``Retry-After`` is not retried at all:
  the gateway counts requests per window (a minute), so a retry a moment later lands in the same
  window and burns quota. Its failure says when the next window begins (jittered), for the
  credential hold-back to wait for;
* auth: 401, or a token DLI cannot parse (DLI.0015 with HTTP 400): the credential itself was
  refused. Retried once when the authorizer can fetch a fresh credential (an IAM token), else
  reported at once (and the hold-back holds the credential);
* denied: 403, the credential was accepted but may not read this list of this project. Reported
  at once; it says nothing of the credential's other calls;
* fatal: anything else, reported at once.

What happened is returned, never raised: the parsed value, or a
:class:`~exporter.dli.errors.Failure` with the HTTP status, the API's error code and message, the
``X-Request-Id`` to quote to support, and when a throttled caller may call again. Every request's
timeout is capped by what is left of the deadline, so no call outlives the scrape that needs it.
An answer is read as it arrives, and refused past ``DLI_EXPORTER_MAX_RESPONSE_BYTES``.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from .. import __version__
from ..domain import Clock, Deadline
from . import schema
from .errors import Failure, Outcome, classify, retry_after_seconds

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
LOGIN_TIMEOUT = 10.0  # an IAM login's own cap, whatever the request timeout


@dataclass(frozen=True)
class Call:
    """A request to make: every header it carries (all of them are signed), and whose it is for
    the counters (``account``: the project id, or "" for calls of no project)."""

    method: str
    url: str
    headers: Mapping[str, str]
    account: str
    body: bytes | None = None

    @classmethod
    def get(cls, url: str, account: str, headers: Mapping[str, str]) -> Call:
        return cls("GET", url, {**HEADERS, **headers}, account)


@dataclass(frozen=True)
class Authorization:
    """The headers that authorize one call, and which IAM token they carry (its generation; None
    for a signature), so that a refusal drops that token and no newer one."""

    headers: dict[str, str]
    token: int | None = None
    fresh: bool = False  # the token came from a login made for this very call


class Authorizer(Protocol):
    """Authorizes calls with one credential in one scope: an AK/SK signer, or an IAM token."""

    def authorize(self, call: Call, deadline: Deadline) -> Authorization | Failure: ...

    def refused(self, authorization: Authorization, request_id: str) -> bool:
        """A call sent with ``authorization`` was refused (401): True when a fresh credential
        may succeed, so one more try is worth it."""
        ...


class Counter(Protocol):
    """Where calls are counted: the exporter's self-metrics, which sit above the DLI side (this
    Protocol is what keeps the DLI side from importing them)."""

    def observe(self, account: str, code: str, seconds: float) -> None: ...

    def retried(self, account: str) -> None: ...

    def logged_in(self, account: str, code: str) -> None: ...

    def left_out(self, account: str, field: str, count: int) -> None:
        """``count`` records of ``account`` had ``field`` left out (it could not be read)."""
        ...


@dataclass(frozen=True)
class Answer:
    """A response that arrived: status, reason phrase, headers, JSON body (None if not JSON), id."""

    status: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)
    payload: Any = field(repr=False)
    request_id: str

    def failure(self, now: float) -> Failure:
        """The failure this answer stands for, when it is not what was asked for. ``now``: epoch
        seconds, for a ``Retry-After`` given as a date."""
        code, msg = schema.error_fields(self.payload)
        retry_after = None
        if self.status == 429:
            retry_after = retry_after_seconds(self.headers.get(schema.RETRY_AFTER_HEADER), now)
        return Failure(classify(self.status, code, parsed=False), msg or self.reason or "error", status=self.status,
                       error_code=code, request_id=self.request_id, retry_after=retry_after)


class Transport:
    """Calls to the DLI and IAM APIs over one pool of keep-alive connections. Thread-safe."""

    def __init__(self, *, timeout: float, retries: int, pool_size: int, counter: Counter,
                 max_bytes: int = MAX_RESPONSE_BYTES, clock: Clock = time.monotonic,
                 wall: Clock = time.time) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._retries = retries
        self._counter = counter
        self._clock = clock
        self._wall = wall
        self._closed = threading.Event()
        # requests' transport adapter without a Session: no cookies, no proxies from the
        # environment (a stray variable must not reroute signed calls), no redirects, no hooks.
        # A Session would merge all of that into every call, about 200 µs of CPU a page.
        self._adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)

    def __repr__(self) -> str:
        return f"Transport(timeout={self._timeout}, retries={self._retries})"

    def fetch(self, call: Call, authorizer: Authorizer, deadline: Deadline, parse: Callable[[Any], T]) -> T | Failure:
        """``call`` sent, and its JSON ``parse``d, retrying as :func:`classify` says until ``deadline``.

        ``parse`` may raise :class:`schema.PayloadError`; its code classifies it like an error
        answer's (an ``is_success`` false with DLI.0999 is worth a retry)."""
        attempt = 0
        renewed = False
        while True:
            got, authorization = self._fetch_once(call, authorizer, deadline, parse)
            if not isinstance(got, Failure):
                return got
            failure = got
            if failure.outcome is Outcome.AUTH and authorization is not None and not renewed \
                    and authorizer.refused(authorization, failure.request_id):
                renewed = True  # e.g. an IAM token expired or was revoked: one more try with a fresh one
                continue
            if failure.outcome is not Outcome.RETRY or self._closed.is_set():
                return failure
            delay = self._delay(attempt, failure.retry_after)
            if failure.throttled:
                resume = delay if failure.retry_after is not None else self._next_window()
                failure = replace(failure, resume_at=self._clock() + resume)
                if failure.retry_after is None:
                    return failure  # the same window would refuse a retry: wait for the next (the hold-back does)
            if attempt >= self._retries or self._clock() + delay >= deadline.at:
                return failure
            log.debug("retrying", extra={"project_id": call.account, "delay": round(delay, 2), "error": str(failure)})
            self._counter.retried(call.account)
            attempt += 1
            if self._closed.wait(delay):
                return failure

    def _fetch_once(self, call: Call, authorizer: Authorizer, deadline: Deadline,
                    parse: Callable[[Any], T]) -> tuple[T | Failure, Authorization | None]:
        """One try: what it gave, and the authorization it was sent with (None: not sent)."""
        timeout = self._time_left(deadline, self._timeout)
        if isinstance(timeout, Failure):
            return timeout, None
        authorization = authorizer.authorize(call, deadline)  # an IAM login is not an API call
        if isinstance(authorization, Failure):
            return authorization, None
        started = self._clock()
        answer = self._send(call.method, call.url, {**call.headers, **authorization.headers}, call.body,
                            self._time_left(deadline, self._timeout))
        if isinstance(answer, Failure):
            # An answer that came but was refused (too large) counts under its status.
            self._counter.observe(call.account, str(answer.status or "error"), self._clock() - started)
            return answer, authorization
        self._counter.observe(call.account, str(answer.status), self._clock() - started)
        if answer.status != 200:
            return answer.failure(self._wall()), authorization
        if answer.payload is None:
            return Failure(classify(200, decoded=False), "the answer is not valid JSON", status=200,
                           request_id=answer.request_id), authorization
        try:
            return parse(answer.payload), authorization
        except schema.PayloadError as exc:
            return Failure(classify(200, exc.code, parsed=False), str(exc), status=200, error_code=exc.code,
                           request_id=answer.request_id), authorization

    def post(self, url: str, body: bytes, *, deadline: Deadline) -> Answer | Failure:
        """One POST (an IAM login), no retries: the call that needs it retries as a whole. An
        answer of any status is returned; a Failure when none came."""
        timeout = self._time_left(deadline, min(self._timeout, LOGIN_TIMEOUT))
        if isinstance(timeout, Failure):
            return timeout
        return self._send("POST", url, {**HEADERS}, body, timeout)

    def _time_left(self, deadline: Deadline, cap: float) -> float | Failure:
        """A call's timeout: what is left before ``deadline``, at most ``cap``; a Failure when nothing is."""
        remaining = deadline.at - self._clock()
        if remaining <= 0 or self._closed.is_set():
            return Failure(Outcome.FATAL, "scrape deadline reached before the call was made")
        return min(cap, remaining)

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
              timeout: float | Failure) -> Answer | Failure:
        if isinstance(timeout, Failure):  # the deadline passed while authorizing (an IAM login)
            return timeout
        request = requests.PreparedRequest()
        request.prepare_method(method)
        request.prepare_url(url, None)
        request.prepare_headers(headers)
        request.prepare_body(body, None)
        try:
            # Never redirected (the adapter does not follow): a Location header must not take the
            # token or the password elsewhere. The API never redirects; a 3xx is an error.
            resp = self._adapter.send(request, timeout=timeout, stream=True)
            try:
                content = self._read_capped(resp)
            finally:
                resp.close()  # after a refused answer this drops the connection: the rest is never read
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            return Failure(classify(None), describe_connection_error(exc, urlsplit(url).netloc, timeout))
        if isinstance(content, Failure):
            return content
        payload = _json_or_none(content)
        request_id = resp.headers.get(schema.REQUEST_ID_HEADER, "") or schema.error_request_id(payload)
        return Answer(resp.status_code, resp.reason or "", resp.headers, payload, request_id)

    def _read_capped(self, resp: requests.Response) -> bytearray | Failure:
        """The body, decompressed, read a chunk at a time; a Failure (no retry: the next answer
        would be as large) as soon as it is larger than the cap, declared or not."""
        declared = resp.headers.get("Content-Length", "")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if declared.isdigit() and not encoded and int(declared) > self._max_bytes:
            return self._too_large(resp)
        content = bytearray()
        while chunk := resp.raw.read(READ_CHUNK, decode_content=True):
            content += chunk
            if len(content) > self._max_bytes:
                return self._too_large(resp)
        return content

    def _too_large(self, resp: requests.Response) -> Failure:
        return Failure(Outcome.FATAL, f"the answer is larger than {self._max_bytes} bytes "
                       "(DLI_EXPORTER_MAX_RESPONSE_BYTES); it was not read further", status=resp.status_code,
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
