"""Reading one API list of one target: every page, checked for completeness, as one result.

A :class:`ListRequest` says what to ask for (the path, the fixed parameters, whether the list is
paged) and how to read an answer (its parser, the key that makes a record listed twice count
once); the resources make them, and nothing here knows what a job or a queue is.

A paged list is read ``limit=100``, oldest first. Page one gives ``total_count``; the other pages
are then read concurrently on the shared page workers (at most ``concurrency`` calls in flight
across all targets). Records created during the read land on the last page and are read too; one
deleted during the read shifts later offsets left, so one record is on no page and the entries
fall short of ``total_count``: the target is then read once more, and reported down if it still
does not add up. A result is whole or absent, never partial. Every call passes the credential's
hold-back (:mod:`.holdback`) first, so a refused or throttled key is not tried again too soon.

:func:`read_pages` is that logic alone, over any way of fetching pages, so it is tested without a
network; :class:`Reader` runs it over the transport.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..domain import Clock, Deadline, FieldError, Page, Result, Target
from ..workers import DaemonPool
from . import schema
from .errors import Failure, Outcome
from .holdback import Holdback
from .transport import Authorizer, Call, Transport

log = logging.getLogger(__name__)

PAGE_LIMIT = schema.PAGE_LIMIT
MAX_EXTRA_PAGES = 1000  # bound on pages read past total_count when records keep appearing
READS = 2  # a second full read when records moved under the first


@dataclass(frozen=True)
class ListRequest:
    """One API list of a project: ``path`` below ``/v1.0/{project_id}/``, the parameters every
    call carries, and how to read an answer into a :class:`~exporter.domain.Page`."""

    name: str  # for logs: "jobs", "jobs detail", "queues"
    path: str
    params: tuple[tuple[str, str], ...]
    parse: Callable[[Any], Page]
    key: Callable[[Any], Hashable]  # records with the same key are one record listed twice
    paged: bool = True  # limit/offset paging (else one call gives the whole list)
    background: bool = False  # no scrape waits for it: its pages queue behind those that one does
    expects_denial: bool = False  # a 403 answers the question asked (may it be read?): not worth a warning


@dataclass(frozen=True)
class PagesRead:
    records: list[Any]  # each record once, in the order first seen
    pages: int
    total_count: int | None  # as the last page said
    field_errors: tuple[FieldError, ...] = ()  # fields the pages left out of their records


@dataclass(frozen=True)
class Incomplete:
    """The pages disagreed with total_count: records moved while we paged."""

    read: int
    total: int

    def __str__(self) -> str:
        return f"read {self.read} entries of {self.total}"


FetchPages = Callable[[Sequence[int]], "list[Page] | Failure"]


def read_pages(fetch: FetchPages, key: Callable[[Any], Hashable]) -> PagesRead | Incomplete | Failure:
    """Every page of a list, ``fetch`` giving the pages at the offsets it is asked for (or the
    failure of one of them); :class:`Incomplete` when fewer entries arrived than the first page's
    ``total_count`` promised."""
    got = fetch([0])
    if isinstance(got, Failure):
        return got
    first = got[0]
    pages = [first]
    if first.total_count is not None and first.raw_count >= PAGE_LIMIT and first.total_count > PAGE_LIMIT:
        more = fetch(range(PAGE_LIMIT, first.total_count, PAGE_LIMIT))
        if isinstance(more, Failure):
            return more
        pages.extend(more)
    # Records created during the read, or an API that gives no total: read on until a short page.
    limit = MAX_EXTRA_PAGES + math.ceil((first.total_count or 0) / PAGE_LIMIT)
    while pages[-1].raw_count >= PAGE_LIMIT and (
        pages[-1].total_count is None or pages[-1].total_count > PAGE_LIMIT * len(pages)
    ):
        if len(pages) > limit:
            return Failure(Outcome.FATAL, f"more than {len(pages)} pages: giving up")
        more = fetch([PAGE_LIMIT * len(pages)])
        if isinstance(more, Failure):
            return more
        pages.extend(more)
    records = unique((record for page in pages for record in page.records), key)
    # Completeness: entries read (duplicates included) against the count when the read began.
    # Records created mid-read only add entries at the end; a deletion leaves one on no page.
    read = sum(page.raw_count for page in pages)
    if first.total_count is not None and read < first.total_count:
        return Incomplete(read, first.total_count)
    return PagesRead(records, len(pages), pages[-1].total_count,
                     tuple(error for page in pages for error in page.field_errors))


def unique(records: Iterable[Any], key: Callable[[Any], Hashable]) -> list[Any]:
    """Each record once (a record listed twice counts once), in the order first seen, as last seen."""
    found: dict[Hashable, Any] = {}
    for record in records:
        found[key(record)] = record
    return list(found.values())


class Reader:
    """Reads targets' lists over the transport, pages in parallel on a shared pool of page workers."""

    def __init__(self, transport: Transport, authorizer: Callable[[str], Authorizer], holdback: Holdback,
                 pages: DaemonPool, *, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._transport = transport
        self._authorizer = authorizer
        self._holdback = holdback
        self._pages = pages
        self._clock = clock
        self._wall = wall

    def __repr__(self) -> str:
        return f"Reader({self._holdback!r})"

    def read(self, target: Target, request: ListRequest, deadline: Deadline) -> Result:
        """Every record of ``target``'s list, or the target down with the reason; never raises
        for the API's sake (a bug still does: the caller turns it into a down result)."""
        pid = target.project_id
        started = self._clock()
        for attempt in range(READS):
            got = self._read_once(target, request, deadline)
            if isinstance(got, Incomplete):
                if attempt + 1 < READS:
                    log.info("records moved while paging, reading again",
                             extra={"project_id": pid, "list": request.name, "error": str(got)})
                    continue
                return Result.down(f"incomplete sweep: {got}", self._clock() - started, self._wall())
            if isinstance(got, Failure):
                # The failure's text carries status, code, message and request id for people; the
                # same as fields for log queries. A hold was logged once, by the hold-back.
                quiet = got.outcome is Outcome.HELD or got.logged or (
                    request.expects_denial and got.outcome is Outcome.DENIED)
                log.log(logging.DEBUG if quiet else logging.WARNING, "sweep failed",
                        extra={"project_id": pid, "list": request.name, **got.log_fields()})
                return Result.down(str(got), self._clock() - started, self._wall(),
                                   denied=got.outcome is Outcome.DENIED)
            return Result(got.records, None, self._clock() - started, self._wall(), got.pages, got.total_count,
                          got.field_errors)
        raise AssertionError("unreachable")

    def _read_once(self, target: Target, request: ListRequest, deadline: Deadline) -> PagesRead | Incomplete | Failure:
        if request.paged:
            return read_pages(lambda offsets: self._fetch_all(target, request, offsets, deadline), request.key)
        page = self.fetch_page(target, request, 0, deadline)  # one answer holds the whole list
        if isinstance(page, Failure):
            return page
        return PagesRead(unique(page.records, request.key), 1, page.total_count, tuple(page.field_errors))

    def fetch_page(self, target: Target, request: ListRequest, offset: int, deadline: Deadline) -> Page | Failure:
        """One page, retried as the transport's classification says, if the credential's hold-back
        lets it be sent."""
        params = [*schema.paging(offset), *request.params] if request.paged else list(request.params)
        call = Call.get(schema.url(target.endpoint, schema.project_path(target.project_id, request.path), params),
                        target.project_id, {schema.PROJECT_HEADER: target.project_id})
        authorizer = self._authorizer(target.project_id)
        return self._holdback.call(deadline, target.project_id,
                                   lambda: self._transport.fetch(call, authorizer, deadline, request.parse))

    def _fetch_all(self, target: Target, request: ListRequest, offsets: Sequence[int],
                   deadline: Deadline) -> list[Page] | Failure:
        futures = [self._pages.submit(self.fetch_page, target, request, offset, deadline,
                                      priority=1 if request.background else 0) for offset in offsets]
        return self._wait_all(futures, deadline)

    def _wait_all(self, futures: list[Future[Page | Failure]], deadline: Deadline) -> list[Page] | Failure:
        """Every page, or the first failure (the pages still queued are cancelled). Woken by the
        pages themselves: once when the last is done, or at the first failure; waiting on the
        pending ones again after each page would cost a millisecond of CPU for every hundred."""
        if not futures:  # nothing would ever wake the wait below
            return []
        settled = threading.Event()
        lock = threading.Lock()
        left = [len(futures)]

        def on_done(future: Future[Page | Failure]) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last or _failure_of(future) is not None:
                settled.set()

        for future in futures:
            future.add_done_callback(on_done)
        settled.wait(deadline.left())
        failure = next((f for f in map(_failure_of, futures) if f is not None), None)
        if failure is None and not all(f.done() for f in futures):
            failure = Failure(Outcome.FATAL, "scrape deadline reached while reading pages")
        if failure is not None:
            for future in futures:
                future.cancel()
            return failure
        return [page for f in futures if not isinstance(page := f.result(), Failure)]


def _failure_of(future: Future[Page | Failure]) -> Failure | None:
    """What a page fetch failed with, if it is done and did (a bug in it as a failure too)."""
    if not future.done() or future.cancelled():
        return None
    exc = future.exception()
    if exc is not None:
        return Failure(Outcome.FATAL, repr(exc))
    result = future.result()
    return result if isinstance(result, Failure) else None
