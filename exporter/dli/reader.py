"""Reading one target in one view: every page, checked for completeness, as one result.

Page one gives ``total_count``; the other pages are then read concurrently on the shared page
workers (at most ``concurrency`` calls in flight across all targets). Jobs created during the
read land on the last page (the list is read oldest first) and are read too; a job deleted during
the read shifts later offsets left, so one job is on no page and the entries fall short of
``total_count``: the target is then read once more, and reported down if it still does not add
up. A result is whole or absent, never partial. Every call passes the credential's hold-back
(:mod:`.holdback`) first, so a refused or throttled key is not tried again too soon.

:func:`read_pages` is that logic alone, over any way of fetching pages, so it is tested without a
network; :class:`Reader` runs it over the transport.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass

from ..domain import Job, Page, ProjectResult, Target, View
from ..workers import DaemonPool
from . import schema
from .credentials import Credentials
from .errors import DliApiError, Outcome
from .holdback import Holdback
from .transport import Transport

log = logging.getLogger(__name__)

PAGE_LIMIT = schema.PAGE_LIMIT
MAX_EXTRA_PAGES = 1000  # bound on pages read past total_count when jobs keep appearing
READS = 2  # a second full read when jobs moved under the first


class Incomplete(Exception):
    """The pages disagreed with total_count: jobs moved while we paged."""


@dataclass(frozen=True)
class PagesRead:
    jobs: list[Job]  # each job once, in the order first seen
    pages: int
    total_count: int | None  # as the last page said


FetchPages = Callable[[Sequence[int]], list[Page]]


def read_pages(fetch: FetchPages) -> PagesRead:
    """Every page of a job list, ``fetch`` giving the pages at the offsets it is asked for.

    Raises :class:`Incomplete` when fewer entries arrived than the first page's ``total_count``
    promised, and whatever ``fetch`` raises."""
    [first] = fetch([0])
    pages = [first]
    if first.total_count is not None and first.raw_count >= PAGE_LIMIT:
        pages.extend(fetch(range(PAGE_LIMIT, first.total_count, PAGE_LIMIT)))
    # Jobs created during the read, or an API that gives no total: read on until a short page.
    limit = MAX_EXTRA_PAGES + math.ceil((first.total_count or 0) / PAGE_LIMIT)
    while pages[-1].raw_count >= PAGE_LIMIT and (
        pages[-1].total_count is None or pages[-1].total_count > PAGE_LIMIT * len(pages)
    ):
        if len(pages) > limit:
            raise DliApiError(f"more than {len(pages)} pages: giving up", Outcome.FATAL)
        pages.extend(fetch([PAGE_LIMIT * len(pages)]))
    unique: dict[int, Job] = {}
    for page in pages:
        for job in page.jobs:
            unique[job.job_id] = job
    # Completeness: entries read (duplicates included) against the count when the read began.
    # Jobs created mid-read only add entries at the end; a deletion leaves one job on no page.
    read = sum(page.raw_count for page in pages)
    if first.total_count is not None and read < first.total_count:
        raise Incomplete(f"read {read} entries of {first.total_count}")
    return PagesRead(list(unique.values()), len(pages), pages[-1].total_count)


class Reader:
    """Reads targets over the transport, pages in parallel on a shared pool of page workers."""

    def __init__(self, transport: Transport, credentials: Credentials, pages: DaemonPool,
                 filters: Mapping[str, str], *, holdback: Holdback | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._credentials = credentials
        self._holdback = holdback if holdback is not None else Holdback(clock=clock)
        self._pages = pages
        self._filters = dict(filters)
        self._clock = clock
        self._wall = wall

    def __repr__(self) -> str:
        return f"Reader(filters={sorted(self._filters)})"

    def read(self, target: Target, view: View, deadline: float) -> ProjectResult:
        """Every job of ``target`` in ``view``, or the target down with the reason; never raises
        for the API's sake (a bug still does: the caller turns it into a down result)."""
        pid = target.project_id
        started = self._clock()
        for attempt in range(READS):
            try:
                got = read_pages(lambda offsets: self._fetch_all(target, view, offsets, deadline))
            except Incomplete as exc:
                if attempt + 1 < READS:
                    log.info("jobs moved while paging, reading again",
                             extra={"project_id": pid, "view": view.value, "error": str(exc)})
                    continue
                return ProjectResult.down(pid, f"incomplete sweep: {exc}", self._clock() - started, self._wall())
            except DliApiError as exc:
                # The error's text carries status, code, message and request id for people; the
                # same as fields for log queries. A hold was logged once, by the hold-back.
                quiet = exc.outcome is Outcome.HELD or exc.logged
                log.log(logging.DEBUG if quiet else logging.WARNING, "sweep failed",
                        extra={"project_id": pid, "view": view.value, "error": str(exc), "status": exc.status or "",
                               "error_code": exc.error_code, "request_id": exc.request_id})
                return ProjectResult.down(pid, str(exc), self._clock() - started, self._wall())
            return ProjectResult(pid, got.jobs, None, self._clock() - started, self._wall(), got.pages,
                                 got.total_count)
        raise AssertionError("unreachable")

    def fetch_page(self, target: Target, view: View, offset: int, deadline: float) -> Page:
        """One page, retried as the transport's classification says, if the credential's hold-back
        lets it be sent."""
        url = schema.list_url(target.endpoint, target.project_id, schema.list_query(offset, self._filters, view))
        with self._holdback.call(target.credential, deadline, target.project_id):
            return self._transport.fetch(url, project_id=target.project_id, deadline=deadline,
                                         parse=schema.parse_page, auth=self._credentials.auth_for(target, deadline))

    def _fetch_all(self, target: Target, view: View, offsets: Sequence[int], deadline: float) -> list[Page]:
        # A scrape waits for the summary view; a detail refresh is read in the background.
        priority = 0 if view is View.SUMMARY else 1
        futures = [self._pages.submit(self.fetch_page, target, view, offset, deadline, priority=priority)
                   for offset in offsets]
        return self._wait_all(futures, deadline)

    def _wait_all(self, futures: list[Future[Page]], deadline: float) -> list[Page]:
        done, pending = wait(futures, timeout=max(0.0, deadline - self._clock()), return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None or pending:
            for fut in pending:
                fut.cancel()
            if failed is not None:
                exc = failed.exception()
                raise exc if isinstance(exc, DliApiError) else DliApiError(repr(exc), Outcome.FATAL)
            raise DliApiError("scrape deadline reached while reading pages", Outcome.FATAL)
        return [f.result() for f in futures]
