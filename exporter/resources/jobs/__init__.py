"""Flink jobs: ``GET /v1.0/{project_id}/streaming/jobs``, read in its two views and merged by job.

The summary view every sweep and the detail view on its own cadence (:mod:`.views`), each job's
fields as :mod:`.record` reads them, and the job series of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from ...dli import schema
from ...dli.reader import ListRequest
from ...domain import Result
from ...series import PROJECT_ID, Attr, Const, Count, Health, MetricSpec, RecordSeries, Table
from ..base import Options, ReadList, Resource, Source
from .record import Job, merge, parse_page
from .views import TwoViews

PATH = "streaming/jobs"
DETAIL_PARAM = ("show_detail", "true")  # the detail view (the summary view is the default)
JOB_TYPES = ("flink_sql_job", "flink_opensource_sql_job", "flink_sql_edge_job", "flink_jar_job")
# The list's filters, as the SDK spells them; the settings of the same names pass them through.
FILTERS = ("job_type", "queue_name", "tags", "user_name", "name", "status")

JOB_ID = "job_id"
JOBS, DETAIL = "jobs", "detail"  # groups: the per-job series, and those of the detail view


def _spec(name: str, type_: str, help_: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, type_, help_, (PROJECT_ID, *labels))


def _per_job(name: str, help_: str, value: Attr | Const, *labels: tuple[str, str], group: str = JOBS,
             type_: str = "gauge") -> RecordSeries:
    """A per-job series: its labels after project_id and job_id as (label, Job attribute) pairs."""
    return RecordSeries(_spec(name, type_, help_, JOB_ID, *(label for label, _ in labels)), value,
                        tuple(attr for _, attr in labels), group)


def _ms(attr: str) -> Attr:
    return Attr(attr, divisor=1000)  # the API's milliseconds, as seconds


def _up(result: Result | None, _: float | None) -> float:
    return 1 if result is not None and result.ok else 0


TABLE = Table(
    key=JOB_ID, key_label=JOB_ID, numeric_key=True,
    counts=(Count(_spec("dli_jobs", "gauge", "Number of DLI Flink jobs by status, job type, queue and run mode.",
                        "status", "job_type", "queue", "run_mode"), ("status", "job_type", "queue", "run_mode")),),
    series=(
        _per_job("dli_job_info", "Information about a DLI Flink job; always 1.", Const(1), ("name", "name"),
                 ("job_type", "job_type"), ("queue", "queue"), ("run_mode", "run_mode"), ("user_name", "user_name"),
                 ("flink_version", "flink_version")),
        _per_job("dli_job_status", "Current status of a DLI Flink job; 1 for that status only.", Const(1),
                 ("status", "status")),
        _per_job("dli_job_status_description_info",
                 "The API's reason for the job's status, while it gives one; always 1.",
                 Const(1, when="status_desc"), ("description", "status_desc")),
        _per_job("dli_job_restarts_total", "Number of times the job restarted, as DLI reports it.", Attr("restarts"),
                 type_="counter"),
        _per_job("dli_job_duration_seconds", "Running duration of the job as DLI reports it, in seconds.",
                 _ms("duration_ms")),
        _per_job("dli_job_created_timestamp_seconds", "When the job was created, in seconds since the epoch.",
                 _ms("create_time_ms")),
        _per_job("dli_job_started_timestamp_seconds", "When the job was last started, in seconds since the epoch.",
                 _ms("start_time_ms")),
        _per_job("dli_job_has_savepoint", "1 if the job has a savepoint, else 0.", Attr("savepoint", flag=True)),
        _per_job("dli_job_compute_units",
                 "Compute units (CUs) the job runs on: real_cu_number when above 0, else cu_number.",
                 Attr("compute_units"), group=DETAIL),
        _per_job("dli_job_manager_compute_units", "Compute units (CUs) of the job's JobManager.",
                 Attr("manager_compute_units"), group=DETAIL),
        _per_job("dli_job_parallelism", "Parallelism configured for the job.", Attr("parallelism"), group=DETAIL),
        _per_job("dli_job_checkpoint_enabled", "1 if automatic checkpoints are enabled for the job, else 0.",
                 Attr("checkpoints", flag=True), group=DETAIL),
        _per_job("dli_job_auto_restart_enabled", "1 if the job restarts automatically on exceptions, else 0.",
                 Attr("auto_restart", flag=True), group=DETAIL),
    ),
    health=(
        Health(_spec("dli_up", "gauge", "1 if the last sweep of the project read every page, else 0."), _up),
        Health(_spec("dli_scrape_duration_seconds", "gauge", "Wall time of the sweep behind the data, in seconds."),
               lambda result, _: result.duration if result is not None else None),
        Health(_spec("dli_last_success_timestamp_seconds", "gauge",
                     "When the last complete sweep of the project finished."), lambda _, last: last),
        Health(_spec("dli_detail_last_success_timestamp_seconds", "gauge",
                     "When the detail view of the project (run_mode, job_config) was last read completely; 0 while it "
                     "never has been."),
               lambda result, _: result.detail_at if result is not None else None),
    ),
)


def _requests(options: Options) -> tuple[ListRequest, ...]:
    filters = tuple(sorted(options.job_filters.items()))
    key = attrgetter(JOB_ID)
    summary = ListRequest("jobs", PATH, filters, parse_page, key)
    if not options.show_detail:
        return (summary,)
    # A scrape waits for the summary view; a detail refresh is read in the background.
    return summary, ListRequest("jobs detail", PATH, (DETAIL_PARAM, *filters), parse_page, key, background=True)


def _source(read: ReadList, options: Options) -> Source:
    summary, *detail = _requests(options)
    return TwoViews(read, summary, detail[0] if detail else None, interval=options.detail_interval,
                    workers=options.workers)


def _groups(options: Options) -> frozenset[str]:
    if not options.per_job:
        return frozenset()
    return frozenset({JOBS, DETAIL}) if options.show_detail else frozenset({JOBS})


def _note(results: Sequence[Result]) -> str:
    """For ``--check``: jobs the detail view did not complete (a user who may not see details)."""
    summary, *detail = results
    if summary.records is None:
        return ""
    details: dict[int, Job] = {job.job_id: job for job in (detail[0].records or ()) } if detail else {}
    jobs, _ = merge(list(summary.records), details)
    no_mode = sum(1 for job in jobs if not job.run_mode)
    no_queue = sum(1 for job in jobs if not job.queue)
    return f"jobs without run_mode: {no_mode}   without queue: {no_queue}"


RESOURCE = Resource(JOBS, TABLE, _requests, _source, _note, groups=_groups)
# Whether a project's jobs may be listed at all (discovery asks it once of each new project): one
# job, no paging. A 403 says no; anything else, yes (a failing API shows on the sweeps).
READABLE = ListRequest("jobs (readable?)", PATH, tuple(schema.one_entry()), parse_page, attrgetter(JOB_ID),
                       paged=False, expects_denial=True)
