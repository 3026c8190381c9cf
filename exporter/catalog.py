"""The one table that declares every metric, and the one table of per-job series.

:data:`METRICS` gives each metric's name, type, help and labels; the mapping, the renderer, the
self-metrics, the README table and the contract tests all read it. :data:`JOB_SERIES` gives, for
each per-job metric, the function from a :class:`~exporter.domain.Job` to its value (None: no
series) and the job attributes its labels come from: the reference mapping and the fast renderer
are both driven by it, so a per-job series is written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .domain import Job

P = "project_id"
JOB = "job_id"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed (counters end in _total)
    type: str  # gauge, counter or histogram
    help: str
    labels: tuple[str, ...]
    # "summary" (always), "jobs" (per job, off with per_job_metrics), "detail" (also needs
    # show_detail), "health" (the exporter's own state, per scrape) or "self" (the exporter's own
    # counters, kept between scrapes)
    group: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("dli_jobs", "gauge", "Number of DLI Flink jobs by status, job type, queue and run mode.",
               (P, "status", "job_type", "queue", "run_mode"), "summary"),
    MetricSpec("dli_job_info", "gauge", "Information about a DLI Flink job; always 1.",
               (P, JOB, "name", "job_type", "queue", "run_mode", "user_name"), "jobs"),
    MetricSpec("dli_job_status", "gauge", "Current status of a DLI Flink job; 1 for that status only.",
               (P, JOB, "status"), "jobs"),
    MetricSpec("dli_job_restarts_total", "counter", "Number of times the job restarted, as DLI reports it.",
               (P, JOB), "jobs"),
    MetricSpec("dli_job_duration_seconds", "gauge",
               "Running duration of the job as DLI reports it, in seconds.", (P, JOB), "jobs"),
    MetricSpec("dli_job_created_timestamp_seconds", "gauge",
               "When the job was created, in seconds since the epoch.", (P, JOB), "jobs"),
    MetricSpec("dli_job_started_timestamp_seconds", "gauge",
               "When the job was last started, in seconds since the epoch.", (P, JOB), "jobs"),
    MetricSpec("dli_job_has_savepoint", "gauge", "1 if the job has a savepoint, else 0.",
               (P, JOB), "jobs"),
    MetricSpec("dli_job_compute_units", "gauge", "Compute units (CUs) configured for the job.",
               (P, JOB), "detail"),
    MetricSpec("dli_job_parallelism", "gauge", "Parallelism configured for the job.",
               (P, JOB), "detail"),
    MetricSpec("dli_job_checkpoint_enabled", "gauge",
               "1 if automatic checkpoints are enabled for the job, else 0.", (P, JOB), "detail"),
    MetricSpec("dli_job_auto_restart_enabled", "gauge",
               "1 if the job restarts automatically on exceptions, else 0.", (P, JOB), "detail"),
    MetricSpec("dli_project_info", "gauge", "A project the exporter reads, and its region; always 1.",
               (P, "region"), "health"),
    MetricSpec("dli_up", "gauge", "1 if the last sweep of the project read every page, else 0.",
               (P,), "health"),
    MetricSpec("dli_scrape_duration_seconds", "gauge", "Wall time of the sweep behind the data, in seconds.",
               (P,), "health"),
    MetricSpec("dli_last_success_timestamp_seconds", "gauge",
               "When the last complete sweep of the project finished.", (P,), "health"),
    MetricSpec("dli_detail_last_success_timestamp_seconds", "gauge",
               "When the detail view of the project (run_mode, job_config) was last read completely.",
               (P,), "health"),
    MetricSpec("dli_api_requests_total", "counter",
               "DLI API calls made, by HTTP status ('error' when no response came).", (P, "code"), "self"),
    MetricSpec("dli_api_request_duration_seconds", "histogram", "Latency of DLI API calls, in seconds.",
               (P,), "self"),
    MetricSpec("dli_api_retries_total", "counter", "DLI API calls retried after an error.",
               (P,), "self"),
    MetricSpec("dli_iam_logins_total", "counter",
               "IAM password logins, by HTTP status ('error' when no response came).", (P, "code"), "self"),
    MetricSpec("dli_scrape_timeout_seconds", "gauge",
               "Time a scrape may take: Prometheus' X-Prometheus-Scrape-Timeout-Seconds, else the configured default.",
               (), "health"),
    MetricSpec("dli_sweeps_total", "counter", "Sweeps of all projects started by scrapes.",
               (), "health"),
    MetricSpec("dli_cache_hits_total", "counter", "Scrapes answered from a cached or already running sweep.",
               (), "health"),
    MetricSpec("dli_targets", "gauge",
               "Projects the exporter keeps state for: the configured ones, and those probed within "
               "DLI_EXPORTER_PROBE_IDLE_SECONDS.", (), "health"),
    MetricSpec("dli_exporter_build_info", "gauge", "Build information of dli-exporter; always 1.",
               ("version",), "health"),
    MetricSpec("dli_exporter_web_config_last_reload_successful", "gauge",
               "1 if the last load of the web configuration file succeeded, else 0 (only with a web config file).",
               (), "self"),
)
SPECS = {spec.name: spec for spec in METRICS}


class SpecFamily:
    """A family of the table: its name (as exposed), type and help come from its spec."""

    __slots__ = ("spec",)

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def help(self) -> str:
        return self.spec.help
ORDER = {spec.name: index for index, spec in enumerate(METRICS)}  # families are exposed in table order

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Legacy Prometheus names only ([a-zA-Z_][a-zA-Z0-9_]*, no colons): no escaping scheme has to quote
# them, which the renderer relies on.
LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Attr:
    """A job's value for a series: the attribute at ``path`` (None when any step of it is None),
    divided by ``divisor``, or, as a ``flag``, a boolean as 0 or 1. A function from a job to a value;
    being declarative too, the fast renderer writes it inline instead of calling it."""

    path: tuple[str, ...]
    divisor: int | None = None
    flag: bool = False

    def __call__(self, job: Job) -> float | None:
        value: Any = job
        for name in self.path:
            value = getattr(value, name)
            if value is None:
                return None
        if self.flag:
            return 1 if value else 0
        return value / self.divisor if self.divisor else value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Const:
    """A series whose value is always the same (``dli_job_info``, ``dli_job_status``)."""

    value: int

    def __call__(self, job: Job) -> float:
        return self.value


@dataclass(frozen=True)
class JobSeries:
    """A per-job metric: its spec, the value a job gives it (None: no series for that job), and the
    job attributes that give the spec's labels after ``project_id`` and ``job_id``."""

    spec: MetricSpec
    value: Attr | Const
    labels: tuple[str, ...] = ()  # Job attribute names, in the order of spec.labels[2:]

    def __post_init__(self) -> None:
        if self.spec.labels[:2] != (P, JOB) or len(self.spec.labels) != 2 + len(self.labels):
            raise ValueError(f"{self.spec.name}: labels do not match the spec's")

    def label_values(self, job: Job) -> tuple[str, ...]:
        return tuple(getattr(job, name) for name in self.labels)


def _ms(name: str) -> Attr:
    return Attr((name,), divisor=1000)  # the API's milliseconds, as seconds


JOB_SERIES: tuple[JobSeries, ...] = (
    JobSeries(SPECS["dli_job_info"], Const(1), ("name", "job_type", "queue", "run_mode", "user_name")),
    JobSeries(SPECS["dli_job_status"], Const(1), ("status",)),
    JobSeries(SPECS["dli_job_restarts_total"], Attr(("restarts",))),
    JobSeries(SPECS["dli_job_duration_seconds"], _ms("duration_ms")),
    JobSeries(SPECS["dli_job_created_timestamp_seconds"], _ms("create_time_ms")),
    JobSeries(SPECS["dli_job_started_timestamp_seconds"], _ms("start_time_ms")),
    JobSeries(SPECS["dli_job_has_savepoint"], Attr(("savepoint",), flag=True)),
    JobSeries(SPECS["dli_job_compute_units"], Attr(("config", "compute_units"))),
    JobSeries(SPECS["dli_job_parallelism"], Attr(("config", "parallelism"))),
    JobSeries(SPECS["dli_job_checkpoint_enabled"], Attr(("config", "checkpoints"), flag=True)),
    JobSeries(SPECS["dli_job_auto_restart_enabled"], Attr(("config", "auto_restart"), flag=True)),
)


def job_series(*, show_detail: bool) -> tuple[JobSeries, ...]:
    """The per-job series exposed: the detail view's only when it is read."""
    return tuple(s for s in JOB_SERIES if s.spec.group == "jobs" or (show_detail and s.spec.group == "detail"))
