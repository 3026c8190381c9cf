"""The DLI API client: HTTP, paging, retries and errors. The only module that imports ``requests``.

A sweep of a project reads page one, learns ``total_count``, then reads the other pages
concurrently (at most ``concurrency`` requests in flight across all projects, over one pool of
keep-alive connections). Every request has a timeout no longer than what is left before the
sweep's deadline, so nothing outlives a scrape. Failures are :class:`DliApiError`, which carries
the HTTP status, the API's error code and message, and the ``X-Request-Id`` to quote to support.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter

from . import __version__
from .auth import AkSkSigner, Token, TokenAuth, TokenCache
from .models import (
    IAM_TOKEN_HEADER,
    PAGE_LIMIT,
    Job,
    Page,
    PayloadError,
    error_fields,
    error_request_id,
    iam_password_request,
    iam_token_expiry,
    list_query,
    parse_page,
)
from .settings import Settings
from .workers import DaemonPool

log = logging.getLogger(__name__)

USER_AGENT = f"dli-exporter/{__version__}"
MAX_RETRY_AFTER = 30.0  # never wait longer than this on a 429, whatever the server asks
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
MAX_EXTRA_PAGES = 1000  # bound on pages read past total_count when jobs keep appearing
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DliApiError(Exception):
    """A call that did not give a usable answer (after retries, where they apply)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "",
                 request_id: str = "", retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.error_msg = message
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = []
        if self.status in (401, 403):
            parts.append("authentication failed:")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(self.error_code)
        text = " ".join(parts)
        text = f"{text}: {self.error_msg}" if text else self.error_msg
        if self.request_id:
            text += f" (request_id={self.request_id})"
        return text


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0


class ApiStats:
    """Counters of the API calls made, read by the collector. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.retries: dict[str, int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.logins: dict[tuple[str, str], int] = {}

    def observe(self, project_id: str, code: str, seconds: float) -> None:
        with self._lock:
            key = (project_id, code)
            self.requests[key] = self.requests.get(key, 0) + 1
            hist = self.latency.get(project_id)
            if hist is None:
                hist = self.latency[project_id] = _Histogram()
            index = bisect_left(LATENCY_BUCKETS, seconds)
            if index < len(LATENCY_BUCKETS):
                hist.buckets[index] += 1
            hist.count += 1
            hist.total += seconds

    def retried(self, project_id: str) -> None:
        with self._lock:
            self.retries[project_id] = self.retries.get(project_id, 0) + 1

    def logged_in(self, project_id: str, outcome: str) -> None:
        with self._lock:
            key = (project_id, outcome)
            self.logins[key] = self.logins.get(key, 0) + 1

    def copy(self) -> ApiStats:
        """A consistent snapshot for one scrape."""
        other = ApiStats()
        with self._lock:
            other.requests = dict(self.requests)
            other.retries = dict(self.retries)
            other.latency = {k: _Histogram(list(h.buckets), h.count, h.total) for k, h in self.latency.items()}
            other.logins = dict(self.logins)
        return other


@dataclass(frozen=True)
class ProjectResult:
    """The outcome of one project's sweep. ``jobs`` is None when any page could not be read."""

    project_id: str
    jobs: list[Job] | None
    error: str | None
    duration: float
    finished_at: float  # epoch seconds
    pages: int = 0
    total_count: int | None = None

    @property
    def ok(self) -> bool:
        return self.jobs is not None


class _Incomplete(Exception):
    """The pages disagreed with total_count: jobs moved while we paged."""


class DliClient:
    """Reads every job of the configured projects. One instance serves the process."""

    def __init__(self, settings: Settings, stats: ApiStats | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.stats = stats or ApiStats()
        self._clock = clock
        self._base = settings.api_endpoint
        self._timeout = settings.request_timeout_seconds
        self._retries = settings.retries
        self._filters = settings.list_filters
        self._closed = threading.Event()
        self._session = requests.Session()
        self._session.trust_env = False  # a stray proxy variable must not reroute signed calls
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=settings.concurrency + 2, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # Every header present is signed, so send only end-to-end ones: a proxy may rewrite the
        # hop-by-hop Connection header (HTTP/1.1 keeps connections alive without it).
        self._session.headers.clear()
        self._session.headers.update({"User-Agent": USER_AGENT, "Content-Type": "application/json",
                                      "Accept": "application/json", "Accept-Encoding": "gzip"})
        # Pages of all projects share these workers: at most `concurrency` calls in flight.
        # Daemon workers: a call stuck on a hanging API must not hold the process at SIGTERM.
        self._pages = DaemonPool(settings.concurrency, "dli-page")
        self._projects = DaemonPool(min(16, max(1, len(settings.effective_project_ids))), "dli-project")
        self._auth: dict[str, Callable[[Any], Any]] = {}
        for pid in settings.effective_project_ids:
            self._auth[pid] = self._make_auth(pid)

    def __repr__(self) -> str:
        return f"DliClient(endpoint={self._base!r}, projects={list(self._auth)!r})"

    # --- authentication ---

    def _make_auth(self, project_id: str) -> Callable[[Any], Any]:
        s = self.settings
        if s.uses_iam_login:
            return TokenAuth(TokenCache(lambda: self._login(project_id)))
        if s.ak is None or s.sk is None:
            raise ValueError("no credentials: Settings.check() was not called")
        return AkSkSigner(s.ak, s.sk, s.security_token)

    def _login(self, project_id: str) -> Token:
        """IAM password login scoped to the project; the token arrives in X-Subject-Token."""
        s = self.settings
        if not (s.iam_username and s.iam_password and s.iam_domain):
            raise ValueError("incomplete IAM settings: Settings.check() was not called")
        body = iam_password_request(s.iam_username, s.iam_password.get_secret_value(), s.iam_domain, project_id)
        started = self._clock()
        try:
            resp = self._session.post(s.token_endpoint, data=json.dumps(body), timeout=min(self._timeout, 10.0),
                                      allow_redirects=False)
        except requests.RequestException as exc:
            self.stats.logged_in(project_id, "error")
            raise DliApiError(f"IAM login failed: {_describe(exc)}", retryable=True) from None
        finally:
            del body  # holds the password: drop it as soon as it is sent
        rid = resp.headers.get("X-Request-Id", "")
        token = resp.headers.get(IAM_TOKEN_HEADER)
        if resp.status_code not in (200, 201) or not token:
            self.stats.logged_in(project_id, str(resp.status_code))
            body = _json_or_none(resp.content)
            code, msg = error_fields(body)
            rid = rid or error_request_id(body)
            raise DliApiError(f"IAM login failed: {msg or resp.reason or 'no token in the answer'}",
                              status=resp.status_code, error_code=code, request_id=rid,
                              retryable=resp.status_code >= 500 or resp.status_code == 429)
        self.stats.logged_in(project_id, str(resp.status_code))
        expires = _parse_expiry(iam_token_expiry(_json_or_none(resp.content)))
        log.debug("IAM login", extra={"project_id": project_id, "seconds": round(self._clock() - started, 3)})
        # IAM tokens live 24 hours; without an expiry in the answer assume less, to be safe.
        return Token(SecretStr(token), expires if expires is not None else time.time() + 12 * 3600)

    # --- one request, with retries ---

    def fetch_page(self, project_id: str, offset: int, deadline: float) -> Page:
        """One page of the job list, retried on connection errors, 5xx, 429 and DLI.0999."""
        url = list_url(self._base, project_id, list_query(offset, self._filters, self.settings.show_detail))
        auth = self._auth[project_id]
        attempt = 0
        relogged = False
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0 or self._closed.is_set():
                raise DliApiError("scrape deadline reached before the page was read", retryable=False)
            try:
                return self._get_page(project_id, url, auth, min(self._timeout, remaining))
            except DliApiError as err:
                if err.status == 401 and isinstance(auth, TokenAuth) and not relogged:
                    # The token expired or was revoked: log in once more, then give up.
                    relogged = True
                    log.info("IAM token rejected, logging in again",
                             extra={"project_id": project_id, "request_id": err.request_id})
                    auth.reject()
                    continue
                if not err.retryable or attempt >= self._retries:
                    raise
                delay = self._delay(attempt, err.retry_after)
                if self._clock() + delay >= deadline:
                    raise
                log.debug("retrying", extra={"project_id": project_id, "offset": offset, "delay": round(delay, 2),
                                             "error": str(err)})
                self.stats.retried(project_id)
                attempt += 1
                if self._closed.wait(delay):
                    raise

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        # Full jitter (AWS architecture blog): spreads the retries of concurrent pages apart.
        return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))

    def _get_page(self, project_id: str, url: str, auth: Callable[[Any], Any], timeout: float) -> Page:
        started = self._clock()
        try:
            # No redirects: requests would carry X-Auth-Token (and the password, for a login) to
            # wherever a Location header points. The API never redirects; a 3xx is an error.
            resp = self._session.get(url, headers={"X-Project-Id": project_id}, auth=auth, timeout=timeout,
                                     allow_redirects=False)
            content = resp.content
        except requests.RequestException as exc:
            self.stats.observe(project_id, "error", self._clock() - started)
            raise DliApiError(_describe(exc), retryable=True) from None
        self.stats.observe(project_id, str(resp.status_code), self._clock() - started)
        rid = resp.headers.get("X-Request-Id", "")
        if resp.status_code != 200:
            body = _json_or_none(content)
            code, msg = error_fields(body)
            rid = rid or error_request_id(body)
            raise DliApiError(
                msg or resp.reason or "error", status=resp.status_code, error_code=code, request_id=rid,
                # DLI reports its own internal errors (DLI.0999) with HTTP 400: worth a retry.
                retryable=resp.status_code >= 500 or resp.status_code == 429 or code == "DLI.0999",
                retry_after=_retry_after(resp.headers.get("Retry-After")) if resp.status_code == 429 else None,
            )
        payload = _json_or_none(content)
        if payload is None:
            raise DliApiError("the answer is not valid JSON", status=200, request_id=rid, retryable=True)
        try:
            return parse_page(payload)
        except PayloadError as exc:
            raise DliApiError(str(exc), status=200, error_code=exc.code, request_id=rid,
                              retryable=exc.code == "DLI.0999") from None

    # --- sweeps ---

    def sweep(self, deadline: float) -> dict[str, ProjectResult]:
        """Every configured project, concurrently; each result ok or failed, never raising."""
        futures = {pid: self._projects.submit(self.sweep_project, pid, deadline) for pid in self._auth}
        results = {}
        for pid, fut in futures.items():
            try:
                # The project sweep watches the deadline itself; the grace covers thread hand-over.
                results[pid] = fut.result(timeout=max(0.0, deadline - self._clock()) + 1.0)
            except Exception as exc:  # noqa: BLE001  (a bug must not take the other projects down)
                log.error("sweep failed unexpectedly", extra={"project_id": pid, "error": repr(exc)})
                results[pid] = self._failed(pid, f"internal error: {exc!r}", self._clock())
        return results

    def sweep_project(self, project_id: str, deadline: float) -> ProjectResult:
        started = self._clock()
        attempts = 2  # a second full read when jobs moved under the first
        for attempt in range(attempts):
            try:
                jobs, pages, total = self._read_all_pages(project_id, deadline)
            except _Incomplete as exc:
                if attempt + 1 < attempts:
                    log.info("jobs moved while paging, reading again", extra={"project_id": project_id,
                                                                              "error": str(exc)})
                    continue
                return self._failed(project_id, f"incomplete sweep: {exc}", started)
            except DliApiError as exc:
                # The error's text carries status, code, message and request id for people; the
                # same as fields for log queries.
                log.warning("sweep failed", extra={"project_id": project_id, "error": str(exc),
                                                   "status": exc.status or "", "error_code": exc.error_code,
                                                   "request_id": exc.request_id})
                return self._failed(project_id, str(exc), started)
            return ProjectResult(project_id, jobs, None, self._clock() - started, time.time(), pages, total)
        raise AssertionError("unreachable")

    def _failed(self, project_id: str, error: str, started: float) -> ProjectResult:
        return ProjectResult(project_id, None, error, self._clock() - started, time.time())

    def _read_all_pages(self, project_id: str, deadline: float) -> tuple[list[Job], int, int | None]:
        first = self._wait_one(self._pages.submit(self.fetch_page, project_id, 0, deadline), deadline)
        pages = [first]
        if first.total_count is not None and first.raw_count >= PAGE_LIMIT:
            offsets = range(PAGE_LIMIT, first.total_count, PAGE_LIMIT)
            futures = [self._pages.submit(self.fetch_page, project_id, off, deadline) for off in offsets]
            pages.extend(self._wait_all(futures, deadline))
        # Jobs created during the sweep, or an API that gives no total: read on until a short page.
        offset = PAGE_LIMIT * len(pages)
        while pages[-1].raw_count >= PAGE_LIMIT and (
            pages[-1].total_count is None or pages[-1].total_count > offset
        ):
            if len(pages) > MAX_EXTRA_PAGES + math.ceil((first.total_count or 0) / PAGE_LIMIT):
                raise DliApiError(f"more than {len(pages)} pages: giving up", retryable=False)
            pages.append(self._wait_one(self._pages.submit(self.fetch_page, project_id, offset, deadline), deadline))
            offset += PAGE_LIMIT
        unique: dict[int, Job] = {}
        for page in pages:
            for job in page.jobs:
                unique[job.job_id] = job
        # Completeness: entries read (duplicates and id-less entries included) against the count
        # when the sweep began. A job deleted mid-sweep shifts later offsets left, so one job is on
        # no page and the entries fall short; jobs created mid-sweep only add entries at the end.
        read = sum(page.raw_count for page in pages)
        expected = first.total_count
        if expected is not None and read < expected:
            raise _Incomplete(f"read {read} entries of {expected}")
        return list(unique.values()), len(pages), pages[-1].total_count

    def _wait_one(self, future: Future[Page], deadline: float) -> Page:
        return self._wait_all([future], deadline)[0]

    def _wait_all(self, futures: list[Future[Page]], deadline: float) -> list[Page]:
        done, pending = wait(futures, timeout=max(0.0, deadline - self._clock()), return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None or pending:
            for fut in pending:
                fut.cancel()
            if failed is not None:
                exc = failed.exception()
                raise exc if isinstance(exc, DliApiError) else DliApiError(repr(exc))
            raise DliApiError("scrape deadline reached while reading pages")
        return [f.result() for f in futures]

    def close(self) -> None:
        self._closed.set()
        self._projects.shutdown()
        self._pages.shutdown()
        self._session.close()


def list_url(base: str, project_id: str, params: Sequence[tuple[str, str]]) -> str:
    """The list API's URL. The query is built here already in the signer's canonical order and
    encoding, so the server sees exactly the string that was signed."""
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params))
    return f"{base}/v1.0/{quote(project_id, safe='')}/streaming/jobs?{query}"


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _describe(exc: requests.RequestException) -> str:
    """A short reason without the URL's query or any header."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_expiry(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
