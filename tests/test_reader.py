"""Paging and completeness alone (read_pages), over pages made in memory: no network, no threads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from exporter.dli.errors import DliApiError
from exporter.dli.reader import MAX_EXTRA_PAGES, Incomplete, read_pages
from exporter.dli.schema import parse_job
from exporter.domain import Page
from tests.helpers import job


class Api:
    """A job list served in pages of 100 by offset, as the API does; it records the offsets asked."""

    def __init__(self, ids: Sequence[int], total: int | None = -1) -> None:
        self.jobs = [parse_job(job(i)) for i in ids]
        self.total = len(self.jobs) if total == -1 else total
        self.asked: list[list[int]] = []
        self.before: dict[int, list[int]] = {}  # offset -> the job ids to serve from then on

    def __call__(self, offsets: Sequence[int]) -> list[Page]:
        self.asked.append(list(offsets))
        pages = []
        for offset in offsets:
            if offset in self.before:
                self.jobs = [parse_job(job(i)) for i in self.before.pop(offset)]
                if self.total is not None:
                    self.total = len(self.jobs)
            chunk = self.jobs[offset:offset + 100]
            pages.append(Page(self.total, chunk, len(chunk)))
        return pages


def test_one_short_page_is_one_call() -> None:
    api = Api(range(1, 51))
    got = read_pages(api)
    assert api.asked == [[0]]
    assert [j.job_id for j in got.jobs] == list(range(1, 51)) and (got.pages, got.total_count) == (1, 50)


def test_the_other_pages_are_asked_for_at_once_after_the_first() -> None:
    api = Api(range(1, 251))
    got = read_pages(api)
    assert api.asked == [[0], [100, 200]]
    assert len(got.jobs) == 250 and got.pages == 3 and got.total_count == 250


def test_exactly_full_pages() -> None:
    api = Api(range(1, 201))
    got = read_pages(api)
    assert api.asked == [[0], [100]] and len(got.jobs) == 200 and got.pages == 2


def test_an_empty_list() -> None:
    got = read_pages(Api([]))
    assert got.jobs == [] and got.pages == 1 and got.total_count == 0


def test_a_job_listed_twice_counts_once_and_is_not_a_gap() -> None:
    api = Api([*range(1, 150), 1])
    got = read_pages(api)
    assert sorted(j.job_id for j in got.jobs) == list(range(1, 150))


def test_jobs_created_during_the_read_are_read_on_the_last_page() -> None:
    api = Api(range(1, 201))
    api.before[100] = list(range(1, 206))  # five more by the time page two is asked for
    got = read_pages(api)
    assert api.asked == [[0], [100], [200]]
    assert len(got.jobs) == 205 and got.total_count == 205


def test_a_job_deleted_during_the_read_leaves_a_gap_that_is_caught() -> None:
    api = Api(range(1, 251))
    api.before[200] = list(range(2, 251))  # job 1 goes: page three starts one job later
    with pytest.raises(Incomplete, match="read 249 entries of 250"):
        read_pages(api)


def test_without_total_count_it_reads_until_a_short_page() -> None:
    api = Api(range(1, 251), total=None)
    got = read_pages(api)
    assert api.asked == [[0], [100], [200]]
    assert len(got.jobs) == 250 and got.total_count is None


def test_a_list_that_never_ends_is_given_up() -> None:
    class Endless:
        calls = 0

        def __call__(self, offsets: Sequence[int]) -> list[Page]:
            self.calls += 1
            return [Page(None, [parse_job(job(offset + i)) for i in range(100)], 100) for offset in offsets]

    endless = Endless()
    with pytest.raises(DliApiError, match="pages: giving up"):
        read_pages(endless)
    assert endless.calls == 1 + MAX_EXTRA_PAGES  # the first page, then one at a time up to the bound


def test_the_first_page_fixes_the_count() -> None:
    """Completeness is judged against the count when the read began, not a later page's."""
    api = Api(range(1, 151))
    api.before[100] = list(range(1, 101))  # the second page is empty now, and says 100
    with pytest.raises(Incomplete, match="read 100 entries of 150"):
        read_pages(api)
