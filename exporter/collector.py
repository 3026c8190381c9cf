"""Mapping a sweep to Prometheus metric families, and the one table that declares every metric.

The collector keeps no gauges between scrapes: each scrape yields fresh families built from the
latest snapshot, so a job that disappears from the API disappears from ``/metrics``. A project
whose sweep failed shows ``dli_up 0`` and none of its job series (partial counts fire false
alerts); other projects are not affected.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from . import __version__
from .client import LATENCY_BUCKETS, ApiStats
from .exposition import escape_label_value, format_value
from .models import Job
from .sweeper import Snapshot

P = "project_id"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed (counters end in _total)
    type: str  # gauge, counter or histogram
    help: str
    labels: tuple[str, ...]
    # "summary" (always), "jobs" (per job, off with per_job_metrics), "detail" (also needs
    # show_detail) or "health" (the exporter's own state)
    group: str


# The single declaration of every metric: the collector, the README table and the tests read it.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("dli_jobs", "gauge", "Number of DLI Flink jobs by status, job type, queue and run mode.",
               (P, "status", "job_type", "queue", "run_mode"), "summary"),
    MetricSpec("dli_job_info", "gauge", "Information about a DLI Flink job; always 1.",
               (P, "job_id", "name", "job_type", "queue", "run_mode", "user_name"), "jobs"),
    MetricSpec("dli_job_status", "gauge", "Current status of a DLI Flink job; 1 for that status only.",
               (P, "job_id", "status"), "jobs"),
    MetricSpec("dli_job_restarts_total", "counter", "Number of times the job restarted, as DLI reports it.",
               (P, "job_id"), "jobs"),
    MetricSpec("dli_job_duration_seconds", "gauge",
               "Running duration of the job as DLI reports it, in seconds.", (P, "job_id"), "jobs"),
    MetricSpec("dli_job_created_timestamp_seconds", "gauge",
               "When the job was created, in seconds since the epoch.", (P, "job_id"), "jobs"),
    MetricSpec("dli_job_started_timestamp_seconds", "gauge",
               "When the job was last started, in seconds since the epoch.", (P, "job_id"), "jobs"),
    MetricSpec("dli_job_has_savepoint", "gauge", "1 if the job has a savepoint, else 0.",
               (P, "job_id"), "jobs"),
    MetricSpec("dli_job_compute_units", "gauge", "Compute units (CUs) configured for the job.",
               (P, "job_id"), "detail"),
    MetricSpec("dli_job_parallelism", "gauge", "Parallelism configured for the job.",
               (P, "job_id"), "detail"),
    MetricSpec("dli_job_checkpoint_enabled", "gauge",
               "1 if automatic checkpoints are enabled for the job, else 0.", (P, "job_id"), "detail"),
    MetricSpec("dli_job_auto_restart_enabled", "gauge",
               "1 if the job restarts automatically on exceptions, else 0.", (P, "job_id"), "detail"),
    MetricSpec("dli_up", "gauge", "1 if the last sweep of the project read every page, else 0.",
               (P,), "health"),
    MetricSpec("dli_scrape_duration_seconds", "gauge", "Wall time of the sweep behind the data, in seconds.",
               (P,), "health"),
    MetricSpec("dli_last_success_timestamp_seconds", "gauge",
               "When the last complete sweep of the project finished.", (P,), "health"),
    MetricSpec("dli_api_requests_total", "counter",
               "DLI API calls made, by HTTP status ('error' when no response came).", (P, "code"), "health"),
    MetricSpec("dli_api_request_duration_seconds", "histogram", "Latency of DLI API calls, in seconds.",
               (P,), "health"),
    MetricSpec("dli_api_retries_total", "counter", "DLI API calls retried after an error.",
               (P,), "health"),
    MetricSpec("dli_iam_logins_total", "counter",
               "IAM password logins, by HTTP status ('error' when no response came).", (P, "code"), "health"),
    MetricSpec("dli_scrape_timeout_seconds", "gauge",
               "Time a scrape may take: Prometheus' X-Prometheus-Scrape-Timeout-Seconds, else the configured default.",
               (), "health"),
    MetricSpec("dli_sweeps_total", "counter", "Sweeps of all projects started by scrapes.",
               (), "health"),
    MetricSpec("dli_cache_hits_total", "counter", "Scrapes answered from a cached or already running sweep.",
               (), "health"),
    MetricSpec("dli_exporter_build_info", "gauge", "Build information of dli-exporter; always 1.",
               ("version",), "health"),
)
SPECS = {spec.name: spec for spec in METRICS}

# The scrape being served: its deadline (time.monotonic()) and the timeout Prometheus announced.
# collect() takes no arguments, so the HTTP handler passes them through this variable, per thread.
SCRAPE_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("SCRAPE_DEADLINE", default=None)


class SnapshotSource(Protocol):
    sweeps: int
    cache_hits: int

    def get(self, deadline: float) -> Snapshot: ...


class _SpecFamily:
    """A family of the METRICS table: name, type and help come from its spec."""

    __slots__ = ("spec",)

    def __init__(self, name: str) -> None:
        self.spec = SPECS[name]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def help(self) -> str:
        return self.spec.help


class Family(_SpecFamily):
    """One metric family's samples, cheap to fill: label values are plain tuples in the order of
    the spec's labels. :meth:`to_metric` gives prometheus-client's form for its encoders."""

    __slots__ = ("samples",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        # (sample name, label names, label values, value)
        self.samples: list[tuple[str, tuple[str, ...], tuple[str, ...], float]] = []

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append((self.spec.name, self.spec.labels, values, value))

    def add_histogram(self, values: tuple[str, ...], counts: Iterable[tuple[float, int]], count: int,
                      total: float) -> None:
        """Buckets as (upper bound, observations in that bucket alone); stored cumulatively."""
        name, labels = self.spec.name, self.spec.labels
        bucket_labels = (*labels, "le")
        cumulative = 0
        for bound, n in counts:
            cumulative += n
            self.samples.append((name + "_bucket", bucket_labels, (*values, format_value(bound)), cumulative))
        self.samples.append((name + "_bucket", bucket_labels, (*values, "+Inf"), count))
        self.samples.append((name + "_count", labels, values, count))
        self.samples.append((name + "_sum", labels, values, total))

    def to_metric(self) -> Metric:
        spec = self.spec
        base = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        metric = Metric(base, spec.help, spec.type)
        for name, labels, values, value in self.samples:
            metric.add_sample(name, dict(zip(labels, values, strict=True)), value)
        return metric


_job_id = attrgetter("job_id")


def job_families(snapshot: Snapshot, project_ids: Iterable[str], *, per_job: bool,
                 show_detail: bool) -> list[Family]:
    """The job families of every project whose sweep succeeded."""
    summary = Family("dli_jobs")
    wanted = {"jobs"} if per_job else set()
    if per_job and show_detail:
        wanted.add("detail")
    fams = {s.name: Family(s.name) for s in METRICS if s.group in wanted}
    for pid in project_ids:
        result = snapshot.results.get(pid)
        if result is None or result.jobs is None:
            continue
        jobs = sorted(result.jobs, key=_job_id)
        counts = Counter((j.status, j.job_type, j.queue, j.run_mode) for j in jobs)
        for (status, job_type, queue, run_mode), n in sorted(counts.items()):
            summary.add((pid, status, job_type, queue, run_mode), n)
        if per_job:
            _add_jobs(fams, pid, jobs, show_detail)
    return [summary, *fams.values()]


def _add_jobs(fams: dict[str, Family], pid: str, jobs: list[Job], show_detail: bool) -> None:
    """The per-job series, by the contract's rules (the reference for :func:`rendered_job_families`)."""
    for job in jobs:
        key = (pid, str(job.job_id))
        fams["dli_job_info"].add((*key, job.name, job.job_type, job.queue, job.run_mode, job.user_name), 1)
        fams["dli_job_status"].add((*key, job.status), 1)
        if job.restart_times is not None:
            fams["dli_job_restarts_total"].add(key, job.restart_times)
        if job.duration_ms is not None:
            fams["dli_job_duration_seconds"].add(key, job.duration_ms / 1000)
        if job.create_time_ms is not None:
            fams["dli_job_created_timestamp_seconds"].add(key, job.create_time_ms / 1000)
        if job.start_time_ms is not None:  # absent when 0: never started
            fams["dli_job_started_timestamp_seconds"].add(key, job.start_time_ms / 1000)
        fams["dli_job_has_savepoint"].add(key, 1 if job.has_savepoint else 0)
        cfg = job.config
        if show_detail and cfg is not None:
            if cfg.cu_number is not None:
                fams["dli_job_compute_units"].add(key, cfg.cu_number)
            if cfg.parallel_number is not None:
                fams["dli_job_parallelism"].add(key, cfg.parallel_number)
            fams["dli_job_checkpoint_enabled"].add(key, 1 if cfg.checkpoint_enabled else 0)
            fams["dli_job_auto_restart_enabled"].add(key, 1 if cfg.restart_when_exception else 0)


class RenderedFamily(_SpecFamily):
    """A family whose sample lines are already rendered: the fast path's per-job families."""

    __slots__ = ("lines",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lines: list[str] = []


def rendered_job_families(snapshot: Snapshot, project_ids: Iterable[str], *, show_detail: bool,
                          fmt: Callable[[float], str]) -> list[RenderedFamily]:
    """The per-job families of :func:`job_families`, rendered straight to exposition lines.

    The hot loop of a scrape, once per job: building a sample tuple per series and rendering it
    generically cost twice the rest of a scrape together. Here each series is one f-string with
    its labels in prometheus-client's (sorted) order, and escaping is checked once per job. The
    tests hold its output byte-identical to prometheus-client rendering :func:`job_families`.
    """
    names = [s.name for s in METRICS if s.group == "jobs" or (show_detail and s.group == "detail")]
    fams = {name: RenderedFamily(name) for name in names}
    info, status, restarts, duration, created, started, savepoint = (fams[name].lines.append for name in (
        "dli_job_info", "dli_job_status", "dli_job_restarts_total", "dli_job_duration_seconds",
        "dli_job_created_timestamp_seconds", "dli_job_started_timestamp_seconds", "dli_job_has_savepoint"))
    for pid in project_ids:
        result = snapshot.results.get(pid)
        if result is None or result.jobs is None:
            continue
        p = escape_label_value(pid)
        for job in sorted(result.jobs, key=_job_id):
            jid = job.job_id
            name, job_type, queue, run_mode, user, state = (
                job.name, job.job_type, job.queue, job.run_mode, job.user_name, job.status)
            joined = name + job_type + queue + run_mode + user + state
            if "\\" in joined or '"' in joined or "\n" in joined:
                name, job_type, queue, run_mode, user, state = (
                    escape_label_value(v) for v in (name, job_type, queue, run_mode, user, state))
            info(f'dli_job_info{{job_id="{jid}",job_type="{job_type}",name="{name}",project_id="{p}",'
                 f'queue="{queue}",run_mode="{run_mode}",user_name="{user}"}} 1.0\n')
            status(f'dli_job_status{{job_id="{jid}",project_id="{p}",status="{state}"}} 1.0\n')
            ids = f'{{job_id="{jid}",project_id="{p}"}} '
            if job.restart_times is not None:
                restarts(f"dli_job_restarts_total{ids}{fmt(job.restart_times)}\n")
            if job.duration_ms is not None:
                duration(f"dli_job_duration_seconds{ids}{fmt(job.duration_ms / 1000)}\n")
            if job.create_time_ms is not None:
                created(f"dli_job_created_timestamp_seconds{ids}{fmt(job.create_time_ms / 1000)}\n")
            if job.start_time_ms is not None:
                started(f"dli_job_started_timestamp_seconds{ids}{fmt(job.start_time_ms / 1000)}\n")
            savepoint(f"dli_job_has_savepoint{ids}{'1.0' if job.has_savepoint else '0.0'}\n")
            cfg = job.config
            if show_detail and cfg is not None:
                if cfg.cu_number is not None:
                    fams["dli_job_compute_units"].lines.append(f"dli_job_compute_units{ids}{fmt(cfg.cu_number)}\n")
                if cfg.parallel_number is not None:
                    fams["dli_job_parallelism"].lines.append(f"dli_job_parallelism{ids}{fmt(cfg.parallel_number)}\n")
                fams["dli_job_checkpoint_enabled"].lines.append(
                    f"dli_job_checkpoint_enabled{ids}{'1.0' if cfg.checkpoint_enabled else '0.0'}\n")
                fams["dli_job_auto_restart_enabled"].lines.append(
                    f"dli_job_auto_restart_enabled{ids}{'1.0' if cfg.restart_when_exception else '0.0'}\n")
    return list(fams.values())


def health_families(snapshot: Snapshot, project_ids: Iterable[str], stats: ApiStats, *,
                    sweeps: int, cache_hits: int, scrape_timeout: float) -> list[Family]:
    up = Family("dli_up")
    duration = Family("dli_scrape_duration_seconds")
    last = Family("dli_last_success_timestamp_seconds")
    for pid in project_ids:
        result = snapshot.results.get(pid)
        up.add((pid,), 1 if result is not None and result.ok else 0)
        if result is not None:
            duration.add((pid,), result.duration)
        if pid in snapshot.last_success:
            last.add((pid,), snapshot.last_success[pid])
    requests = Family("dli_api_requests_total")
    for (pid, code), n in sorted(stats.requests.items()):
        requests.add((pid, code), n)
    latency = Family("dli_api_request_duration_seconds")
    for pid, hist in sorted(stats.latency.items()):
        latency.add_histogram((pid,), zip(LATENCY_BUCKETS, hist.buckets, strict=True), hist.count, hist.total)
    retries = Family("dli_api_retries_total")
    for pid, n in sorted(stats.retries.items()):
        retries.add((pid,), n)
    logins = Family("dli_iam_logins_total")
    for (pid, code), n in sorted(stats.logins.items()):
        logins.add((pid, code), n)
    timeout = Family("dli_scrape_timeout_seconds")
    timeout.add((), scrape_timeout)
    sweeps_family = Family("dli_sweeps_total")
    sweeps_family.add((), sweeps)
    hits = Family("dli_cache_hits_total")
    hits.add((), cache_hits)
    build = Family("dli_exporter_build_info")
    build.add((__version__,), 1)
    return [up, duration, last, requests, latency, retries, logins, timeout, sweeps_family, hits, build]


class DliCollector(Collector):
    """Yields every family of the contract from the snapshot the sweeper gives for this scrape."""

    def __init__(self, source: SnapshotSource, stats: ApiStats, project_ids: Iterable[str], *,
                 per_job: bool = True, show_detail: bool = False, default_timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._stats = stats
        self._project_ids = list(project_ids)
        self._per_job = per_job
        self._show_detail = show_detail
        self._default_timeout = default_timeout
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry check names without a sweep."""
        for spec in METRICS:
            yield Family(spec.name).to_metric()

    def _scrape(self) -> tuple[float, float]:
        scrape = SCRAPE_DEADLINE.get()
        return scrape if scrape is not None else (self._clock() + self._default_timeout, self._default_timeout)

    def _health(self, snapshot: Snapshot, timeout: float) -> list[Family]:
        return health_families(snapshot, self._project_ids, self._stats.copy(), sweeps=self._source.sweeps,
                               cache_hits=self._source.cache_hits, scrape_timeout=timeout)

    def families(self) -> list[Family]:
        """This scrape's families, sweeping (or reusing a sweep) within the scrape's deadline."""
        deadline, timeout = self._scrape()
        snapshot = self._source.get(deadline)
        return [*job_families(snapshot, self._project_ids, per_job=self._per_job, show_detail=self._show_detail),
                *self._health(snapshot, timeout)]

    def fast_families(self, fmt: Callable[[float], str]) -> list[Family | RenderedFamily]:
        """The same families as :meth:`families`, the per-job ones already rendered (see
        :func:`rendered_job_families`), for the renderers of :mod:`exporter.exposition`."""
        deadline, timeout = self._scrape()
        snapshot = self._source.get(deadline)
        summary = job_families(snapshot, self._project_ids, per_job=False, show_detail=False)
        rendered: list[RenderedFamily] = []
        if self._per_job:
            rendered = rendered_job_families(snapshot, self._project_ids, show_detail=self._show_detail, fmt=fmt)
        return [*summary, *rendered, *self._health(snapshot, timeout)]

    def collect(self) -> Iterator[Metric]:
        for family in self.families():
            yield family.to_metric()
