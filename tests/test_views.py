"""The two views: the merge, when each view is read, and what a scrape sees over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from exporter.dli.reader import ListRequest
from exporter.domain import Deadline, Result, Target
from exporter.resources import jobs as jobs_resource
from exporter.resources.base import Options
from exporter.resources.jobs.record import Job, merge
from exporter.resources.jobs.views import BACKGROUND_TIMEOUT, EARLY_READ_GAP, RETRY_AFTER_FAILURE, TwoViews
from exporter.simulator import Simulator, demo_projects
from exporter.wiring import Exporter
from tests.helpers import jobs, scrape

Start = Callable[..., Exporter]
TARGET = Target("p1", "http://127.0.0.1:1")
SUMMARY, DETAIL = jobs_resource.RESOURCE.requests(Options())


def summary_job(job_id: int, **fields: object) -> Job:
    """A job as the summary view gives it: no run mode, no configuration."""
    values: dict[str, object] = {
        "job_id": job_id, "name": f"job-{job_id}", "job_type": "flink_sql_job", "status": "job_running",
        "status_desc": "", "queue": "q1", "run_mode": "", "user_name": "alice", "create_time_ms": 1000,
        "start_time_ms": 2000,
        "duration_ms": 3000, "restarts": 1, "savepoint": True}
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def detail_job(job_id: int, **fields: object) -> Job:
    """A job as the detail view gives it: no user, no duration."""
    values: dict[str, object] = {
        "job_id": job_id, "name": f"job-{job_id}", "job_type": "flink_sql_job", "status": "job_idle",
        "status_desc": "", "queue": "q1", "run_mode": "exclusive_cluster", "user_name": "", "create_time_ms": 1000,
        "start_time_ms": 2000, "duration_ms": None, "restarts": 0, "savepoint": False,
        "compute_units": 4, "parallelism": 2, "checkpoints": True, "auto_restart": None}
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def test_merge_takes_each_field_from_the_view_that_carries_it() -> None:
    merged, unseen = merge([summary_job(1), summary_job(2)], {1: detail_job(1)})
    one, two = merged
    assert unseen == [2] and two == summary_job(2)  # not in the detail view yet: as the summary gave it
    assert (one.run_mode, one.compute_units, one.parallelism, one.checkpoints, one.auto_restart) == (
        "exclusive_cluster", 4, 2, True, None)  # detail only
    assert (one.user_name, one.duration_ms) == ("alice", 3000)  # summary only
    # Both carry these: the summary's, which is this sweep's (the detail view is up to 10 minutes old).
    assert (one.status, one.restarts, one.savepoint) == ("job_running", 1, True)


def test_merge_fills_what_a_sparse_summary_lacks_but_never_status_or_duration() -> None:
    sparse = summary_job(1, queue="", start_time_ms=None, restarts=None, status="unknown", duration_ms=None)
    [one], _ = merge([sparse], {1: detail_job(1, queue="q9", start_time_ms=5000, restarts=3, duration_ms=7)})
    assert (one.queue, one.start_time_ms, one.restarts) == ("q9", 5000, 3)
    assert (one.status, one.duration_ms) == ("unknown", None)  # never older than the summary's sweep


class FakeApi:
    """Reads of either view, counted; a view's reads can be held (to show nobody waits) or fail."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.deadlines: list[tuple[str, Deadline]] = []
        self.summary = [summary_job(1), summary_job(2)]
        self.detail = [detail_job(1), detail_job(2)]
        self.detail_ok = True
        self.detail_gate = threading.Event()
        self.detail_gate.set()
        self.detail_done = threading.Event()

    def read(self, target: Target, request: ListRequest, deadline: Deadline) -> Result:
        self.reads.append(request.name)
        self.deadlines.append((request.name, deadline))
        if request is SUMMARY:
            return Result(list(self.summary), None, 0.0, 100.0)
        self.detail_gate.wait(10)
        try:
            if not self.detail_ok:
                return Result.down("HTTP 500", 0.0, 200.0)
            return Result(list(self.detail), None, 0.0, 200.0 + len(self.reads))
        finally:
            self.detail_done.set()

    def count(self, request: ListRequest) -> int:
        return self.reads.count(request.name)


def views_for(api: FakeApi, now: list[float], interval: float = 600.0, detail: bool = True) -> TwoViews:
    return TwoViews(api.read, SUMMARY, DETAIL if detail else None, interval=interval, workers=4,
                    clock=lambda: now[0])


def far(now: list[float]) -> Deadline:
    """A deadline far ahead of the fake clock."""
    return Deadline(now[0] + 1e5, 10.0, lambda: now[0])


World = tuple[FakeApi, list[float], TwoViews]


@pytest.fixture
def world() -> Iterator[World]:
    """A fake API, a fake clock at 0, and both views read through them every 600 s."""
    api, now = FakeApi(), [0.0]
    views = views_for(api, now)
    yield api, now, views
    views.close()


def at(views: TwoViews, now: list[float], second: float) -> Result:
    """A sweep at ``second`` on the fake clock."""
    now[0] = second
    return views.read(TARGET, far(now))


def settle(api: FakeApi) -> None:
    """Wait for a background detail read to finish."""
    assert api.detail_done.wait(5)
    time.sleep(0.05)  # its result is stored just after the read returns
    api.detail_done.clear()


def test_the_first_sweep_waits_for_both_views_then_detail_comes_every_interval(world: World) -> None:
    api, now, views = world
    first = views.read(TARGET, far(now))
    assert first.records is not None and {j.run_mode for j in first.records} == {"exclusive_cluster"}
    assert first.detail_at is not None and api.count(DETAIL) == 1
    for second in range(1, 600, 15):  # a scrape every 15 s: summary only
        assert at(views, now, second).records is not None
    assert (api.count(SUMMARY), api.count(DETAIL)) == (41, 1)
    at(views, now, 600.0)
    settle(api)
    assert api.count(DETAIL) == 2


def test_no_scrape_waits_for_a_detail_refresh(world: World) -> None:
    api, now, views = world
    views.read(TARGET, far(now))
    api.detail_gate.clear()  # the next detail read hangs
    now[0] = 700.0
    started = time.monotonic()
    result = views.read(TARGET, far(now))  # due: starts the detail read in the background
    again = views.read(TARGET, far(now))
    assert time.monotonic() - started < 1.0
    # The old detail data, not a wait for the new.
    assert result.records is not None and {j.run_mode for j in result.records} == {"exclusive_cluster"}
    assert again.records is not None
    api.detail_gate.set()
    settle(api)
    assert api.count(DETAIL) == 2  # one read was in flight, not one per sweep


def test_a_failed_detail_read_keeps_the_previous_data_and_is_tried_again_after_a_minute(world: World) -> None:
    api, now, views = world
    first = views.read(TARGET, far(now))
    api.detail_ok = False
    at(views, now, 600.0)
    settle(api)
    kept = at(views, now, 601.0)
    assert kept.ok and kept.records is not None and {j.run_mode for j in kept.records} == {"exclusive_cluster"}
    assert kept.detail_at == first.detail_at  # when the detail view last succeeded
    at(views, now, 600.0 + RETRY_AFTER_FAILURE - 1)
    assert api.count(DETAIL) == 2
    at(views, now, 600.0 + RETRY_AFTER_FAILURE)
    settle(api)
    assert api.count(DETAIL) == 3


def test_new_jobs_bring_the_detail_read_forward_at_most_once_a_minute(world: World) -> None:
    api, now, views = world
    views.read(TARGET, far(now))
    api.summary.append(summary_job(3))  # a new job: the detail view has not shown it
    now[0] = EARLY_READ_GAP - 1
    fresh = views.read(TARGET, far(now))
    assert fresh.records is not None and fresh.records[-1].run_mode == "" and api.count(DETAIL) == 1
    api.detail.append(detail_job(3, run_mode="edge_node"))
    now[0] = EARLY_READ_GAP
    views.read(TARGET, far(now))
    settle(api)
    now[0] = EARLY_READ_GAP + 1
    known = views.read(TARGET, far(now))
    assert api.count(DETAIL) == 2 and known.records is not None and known.records[-1].run_mode == "edge_node"
    # A job the detail view leaves out does not bring it forward again and again.
    api.summary.append(summary_job(4))
    now[0] = 2 * EARLY_READ_GAP + 1
    views.read(TARGET, far(now))
    settle(api)
    for second in range(3, 9):
        now[0] = second * EARLY_READ_GAP + 1
        views.read(TARGET, far(now))
    assert api.count(DETAIL) == 3


def test_summary_only_and_every_sweep() -> None:
    api, now = FakeApi(), [0.0]
    summary_only = views_for(api, now, detail=False)
    for _ in range(3):
        result = summary_only.read(TARGET, far(now))
        assert result.records is not None and {j.run_mode for j in result.records} == {""} and result.detail_at is None
    assert api.reads == [SUMMARY.name] * 3
    api.reads.clear()
    every = views_for(api, now, interval=0)
    for _ in range(3):
        assert every.read(TARGET, far(now)).records is not None
    assert api.count(SUMMARY) == 3 and api.count(DETAIL) == 3
    every.close()


def test_a_failed_summary_is_down_whatever_the_detail_view_says(world: World) -> None:
    api, now, views = world

    def failing(target: Target, request: ListRequest, deadline: Deadline) -> Result:
        if request is SUMMARY:
            return Result.down("HTTP 500", 0.0, 1.0)
        return api.read(target, request, deadline)

    views._read = failing  # type: ignore[method-assign]
    result = views.read(TARGET, far(now))
    assert not result.ok and result.records is None and result.detail_at is not None


def test_a_background_refresh_runs_under_its_own_deadline_not_the_scrapes(world: World) -> None:
    """The first read waits with the scrape, under its deadline; a refresh no scrape waits for
    gets a deadline of its own, or a short scrape would cut every refresh short."""
    api, now, views = world
    first = far(now)
    views.read(TARGET, first)
    now[0] = 700.0
    scrape_deadline = Deadline(now[0] + 0.5, 1.0, lambda: now[0])  # a scrape with half a second left
    views.read(TARGET, scrape_deadline)
    settle(api)
    details = [deadline for name, deadline in api.deadlines if name == DETAIL.name]
    assert details[0] is first  # the first read: the scrape's
    assert details[1] is not scrape_deadline and details[1].at == now[0] + BACKGROUND_TIMEOUT


# --- over HTTP, against the simulator answering as documented ---

def test_default_settings_give_every_job_both_views(exporter_for: Start) -> None:
    data = demo_projects()
    with Simulator(data) as sim:
        exporter = exporter_for(sim)  # default settings: both views
        got = scrape(exporter)
        info = got.samples("dli_job_info")
        assert len(info) == sum(len(js) for js in data.values())
        assert all(labels["run_mode"] and labels["user_name"] for labels, _ in info)
        ids = {labels["job_id"] for labels, _ in info}
        for name in ("dli_job_duration_seconds", "dli_job_compute_units"):
            assert {labels["job_id"] for labels, _ in got.samples(name)} == ids, name
        # The demo's v2 job without resource_config has no parallelism, and says so; only it.
        no_resources = {str(j["job_id"]) for js in data.values() for j in js
                        if j["job_config"].get("resource_config_version") == "v2" and "resource_config" not in
                        j["job_config"]}
        assert len(no_resources) == 1
        assert {labels["job_id"] for labels, _ in got.samples("dli_job_parallelism")} == ids - no_resources
        assert got.total("dli_api_field_errors_total", field="job.job_config.resource_config") > 0
        # A status change shows on the next scrape (the summary view is read on every sweep).
        pid, changed = next(iter(data)), None
        for job_data in sim.projects[pid]:
            if job_data["status"] == "job_running" and not job_data.get("_pinned_status"):
                job_data["status"], changed = "job_running_exception", str(job_data["job_id"])
                break
        sim.set_jobs(pid, sim.projects[pid])
        after = scrape(exporter)
    assert changed is not None
    assert after.value("dli_job_status", project_id=pid, job_id=changed, status="job_running_exception") == 1
    details = [r for r in sim.recorded() if r.query.get("show_detail") == "true"]
    assert len({r.path for r in details}) == len(data) and len(details) == len(data)  # once per project


def test_a_sparse_summary_gets_queue_start_and_restarts_from_the_detail_view(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(3, restart_times=4, queue_name="q7")}, sparse_summary=True) as sim:
        got = scrape(exporter_for(sim))
    assert {labels["queue"] for labels, _ in got.samples("dli_job_info")} == {"q7"}
    assert set(got.by("dli_job_restarts_total", "job_id").values()) == {4.0}
    assert len(got.by("dli_job_started_timestamp_seconds", "job_id")) == 3
    assert len(got.by("dli_job_duration_seconds", "job_id")) == 3


def test_back_to_back_scrapes_add_at_most_one_detail_read_per_interval(exporter_for: Start) -> None:
    interval = 1.0
    with Simulator({"p1": jobs(150), "p2": jobs(20, start=1001)}) as sim:
        exporter = exporter_for(sim, detail_interval_seconds=interval)  # uncached: cache_seconds=0
        started = time.monotonic()
        scrapes = 0
        while time.monotonic() - started < 3.2:
            scrape(exporter)
            scrapes += 1
        took = time.monotonic() - started
        time.sleep(0.3)  # a detail read started by the last scrape
        pages = {r.query["offset"] for r in sim.recorded("/v1.0/p1/") if r.query.get("show_detail") == "true"}
        detail_reads = {pid: sum(1 for r in sim.recorded(f"/v1.0/{pid}/")
                                 if r.query.get("show_detail") == "true" and r.query["offset"] == "0")
                        for pid in ("p1", "p2")}
    assert pages == {"0", "100"}
    assert scrapes > 10
    for pid, reads in detail_reads.items():
        assert reads <= 1 + took / interval + 1, (pid, reads, scrapes)  # the first, then one per interval


def test_a_detail_view_never_read_shows_as_never() -> None:
    """0 until the detail view has been read completely once (an alert tells it from "stale"),
    and no timestamp at all without a detail view."""
    api, now = FakeApi(), [0.0]
    api.detail_ok = False
    views = views_for(api, now)
    try:
        assert views.read(TARGET, far(now)).detail_at == 0.0
    finally:
        views.close()
    summary_only = views_for(api, now, detail=False)
    try:
        assert summary_only.read(TARGET, far(now)).detail_at is None
    finally:
        summary_only.close()
