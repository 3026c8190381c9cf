"""From a snapshot to metric families: pure functions over the catalog's tables.

Families are built fresh for each scrape from the snapshot behind it, so a job that disappears
from the API disappears from ``/metrics``. A project whose sweep failed shows ``dli_up 0`` and
none of its job series (partial counts fire false alerts); other projects are not affected.
These are the reference families: the fast renderer's per-job lines are checked against them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from operator import attrgetter

from prometheus_client.metrics_core import Metric

from . import __version__
from .catalog import SPECS, SpecFamily, job_series
from .domain import Job, Snapshot

Sample = tuple[str, tuple[str, ...], tuple[str, ...], float]  # sample name, label names, label values, value


class Family(SpecFamily):
    """One metric family's samples, cheap to fill: label values are plain tuples in the order of
    the spec's labels. :meth:`to_metric` gives prometheus-client's form for its encoders."""

    __slots__ = ("samples",)

    def __init__(self, name: str) -> None:
        super().__init__(SPECS[name])
        self.samples: list[Sample] = []

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append((self.spec.name, self.spec.labels, values, value))

    def to_metric(self) -> Metric:
        spec = self.spec
        base = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        metric = Metric(base, spec.help, spec.type)
        for name, labels, values, value in self.samples:
            metric.add_sample(name, dict(zip(labels, values, strict=True)), value)
        return metric


_job_id = attrgetter("job_id")
_combination = attrgetter("status", "job_type", "queue", "run_mode")  # the labels of dli_jobs, after project_id


def succeeded(snapshot: Snapshot, project_ids: Iterable[str]) -> Iterator[tuple[str, list[Job]]]:
    """(project id, its jobs sorted by id) for each project whose sweep succeeded."""
    for pid in project_ids:
        result = snapshot.results.get(pid)
        if result is not None and result.jobs is not None:
            yield pid, sorted(result.jobs, key=_job_id)


def summary_family(projects: Iterable[tuple[str, list[Job]]]) -> Family:
    """``dli_jobs``: jobs counted by status, job type, queue and run mode (only combinations that exist)."""
    family = Family("dli_jobs")
    for pid, jobs in projects:
        counts = Counter(map(_combination, jobs))
        for (status, job_type, queue, run_mode), n in sorted(counts.items()):
            family.add((pid, status, job_type, queue, run_mode), n)
    return family


def job_families(snapshot: Snapshot, project_ids: Iterable[str], *, per_job: bool,
                 show_detail: bool) -> list[Family]:
    """``dli_jobs`` and, with ``per_job``, the per-job families of every project that succeeded."""
    projects = list(succeeded(snapshot, project_ids))
    series = job_series(show_detail=show_detail) if per_job else ()
    families = [Family(s.spec.name) for s in series]
    for pid, jobs in projects:
        for job in jobs:
            key = (pid, str(job.job_id))
            for s, family in zip(series, families, strict=True):
                value = s.value(job)
                if value is not None:
                    family.add(key + s.label_values(job), value)
    return [summary_family(projects), *families]


def health_families(snapshot: Snapshot, project_ids: Iterable[str], *, scrape_timeout: float,
                    regions: Mapping[str, str] | None = None) -> list[Family]:
    """The projects (with their regions: "" where unknown), their health, and the scrape's timeout."""
    info = Family("dli_project_info")
    up = Family("dli_up")
    duration = Family("dli_scrape_duration_seconds")
    last = Family("dli_last_success_timestamp_seconds")
    detail = Family("dli_detail_last_success_timestamp_seconds")
    for pid in project_ids:
        info.add((pid, (regions or {}).get(pid, "")), 1)
        result = snapshot.results.get(pid)
        up.add((pid,), 1 if result is not None and result.ok else 0)
        if result is not None:
            duration.add((pid,), result.duration)
            if result.detail_at is not None:
                detail.add((pid,), result.detail_at)
        if pid in snapshot.last_success:
            last.add((pid,), snapshot.last_success[pid])
    timeout = Family("dli_scrape_timeout_seconds")
    timeout.add((), scrape_timeout)
    return [info, up, duration, last, detail, timeout]


def exporter_families(*, sweeps: int, cache_hits: int, targets: int) -> list[Family]:
    """The exporter's own series: sweeps, cache hits, targets held, build."""
    sweeps_family = Family("dli_sweeps_total")
    sweeps_family.add((), sweeps)
    hits = Family("dli_cache_hits_total")
    hits.add((), cache_hits)
    held = Family("dli_targets")
    held.add((), targets)
    build = Family("dli_exporter_build_info")
    build.add((__version__,), 1)
    return [sweeps_family, hits, held, build]


def from_client_metric(metric: Metric) -> Family:
    """A prometheus-client metric of our catalog as a Family, its label sets sorted, without the
    ``_created`` samples (which our exposition has never had)."""
    name = metric.name + "_total" if metric.type == "counter" else metric.name
    family = Family(name)
    order = family.spec.labels
    samples = []
    for sample in metric.samples:
        if sample.name.endswith("_created"):
            continue
        names = tuple(sample.labels)
        samples.append((sample.name, names, tuple(sample.labels[n] for n in names), sample.value))
    # Sorted by the family's own labels; within a label set, the stable sort keeps the histogram's
    # buckets, count and sum in prometheus-client's order.
    samples.sort(key=lambda s: tuple(dict(zip(s[1], s[2], strict=True)).get(n, "") for n in order))
    family.samples.extend(samples)
    return family
