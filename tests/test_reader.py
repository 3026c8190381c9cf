"""Paging and completeness alone (read_pages), over pages made in memory: no network, no threads."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from exporter.dli.errors import Failure, Outcome
from exporter.dli.reader import MAX_EXTRA_PAGES, Incomplete, PagesRead, read_pages
from exporter.domain import Page
from tests.helpers import job, parsed

BY_ID = attrgetter("job_id")


def read(fetch: object) -> PagesRead:
    got = read_pages(fetch, BY_ID)  # type: ignore[arg-type]
    assert isinstance(got, PagesRead), got
    return got


class Api:
    """A job list served in pages of 100 by offset, as the API does; it records the offsets asked."""

    def __init__(self, ids: Sequence[int], total: int | None = -1) -> None:
        self.jobs = [parsed(job(i)) for i in ids]
        self.total = len(self.jobs) if total == -1 else total
        self.asked: list[list[int]] = []
        self.before: dict[int, list[int]] = {}  # offset -> the job ids to serve from then on

    def __call__(self, offsets: Sequence[int]) -> list[Page]:
        self.asked.append(list(offsets))
        pages = []
        for offset in offsets:
            if offset in self.before:
                self.jobs = [parsed(job(i)) for i in self.before.pop(offset)]
                if self.total is not None:
                    self.total = len(self.jobs)
            chunk = self.jobs[offset:offset + 100]
            pages.append(Page(self.total, chunk, len(chunk)))
        return pages


def test_one_short_page_is_one_call() -> None:
    api = Api(range(1, 51))
    got = read(api)
    assert api.asked == [[0]]
    assert [j.job_id for j in got.records] == list(range(1, 51)) and (got.pages, got.total_count) == (1, 50)


def test_the_other_pages_are_asked_for_at_once_after_the_first() -> None:
    api = Api(range(1, 251))
    got = read(api)
    assert api.asked == [[0], [100, 200]]
    assert len(got.records) == 250 and got.pages == 3 and got.total_count == 250


def test_exactly_full_pages() -> None:
    api = Api(range(1, 201))
    got = read(api)
    assert api.asked == [[0], [100]] and len(got.records) == 200 and got.pages == 2


def test_one_exactly_full_page_is_one_call() -> None:
    """100 jobs of 100: the count says there is no second page, and nothing is asked for (or
    waited on: the page workers get no empty batch, test_client holds that over HTTP)."""
    api = Api(range(1, 101))
    got = read(api)
    assert api.asked == [[0]] and len(got.records) == 100 and got.pages == 1


def test_an_empty_list() -> None:
    got = read(Api([]))
    assert got.records == [] and got.pages == 1 and got.total_count == 0


def test_a_job_listed_twice_counts_once_and_is_not_a_gap() -> None:
    api = Api([*range(1, 150), 1])
    got = read(api)
    assert sorted(j.job_id for j in got.records) == list(range(1, 150))


def test_jobs_created_during_the_read_are_read_on_the_last_page() -> None:
    api = Api(range(1, 201))
    api.before[100] = list(range(1, 206))  # five more by the time page two is asked for
    got = read(api)
    assert api.asked == [[0], [100], [200]]
    assert len(got.records) == 205 and got.total_count == 205


def test_a_job_deleted_during_the_read_leaves_a_gap_that_is_caught() -> None:
    api = Api(range(1, 251))
    api.before[200] = list(range(2, 251))  # job 1 goes: page three starts one job later
    assert read_pages(api, BY_ID) == Incomplete(249, 250)
    assert str(Incomplete(249, 250)) == "read 249 entries of 250"


def test_without_total_count_it_reads_until_a_short_page() -> None:
    api = Api(range(1, 251), total=None)
    got = read(api)
    assert api.asked == [[0], [100], [200]]
    assert len(got.records) == 250 and got.total_count is None


def test_a_list_that_never_ends_is_given_up() -> None:
    class Endless:
        calls = 0

        def __call__(self, offsets: Sequence[int]) -> list[Page]:
            self.calls += 1
            return [Page(None, [parsed(job(offset + i)) for i in range(100)], 100) for offset in offsets]

    endless = Endless()
    given_up = read_pages(endless, BY_ID)
    assert isinstance(given_up, Failure) and "pages: giving up" in str(given_up)
    assert endless.calls == 1 + MAX_EXTRA_PAGES  # the first page, then one at a time up to the bound


def test_the_first_page_fixes_the_count() -> None:
    """Completeness is judged against the count when the read began, not a later page's."""
    api = Api(range(1, 151))
    api.before[100] = list(range(1, 101))  # the second page is empty now, and says 100
    assert read_pages(api, BY_ID) == Incomplete(100, 150)


def test_a_failed_page_is_the_reads_failure() -> None:
    failure = Failure(Outcome.FATAL, "boom")
    api = Api(range(1, 251))
    asked: list[Sequence[int]] = []

    def failing(offsets: Sequence[int]) -> list[Page] | Failure:
        asked.append(offsets)
        return api(offsets) if offsets == [0] else failure

    assert read_pages(failing, BY_ID) is failure and len(asked) == 2
