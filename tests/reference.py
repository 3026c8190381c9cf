"""The golden scrape and its reference exposition: what prometheus-client's own encoders write for
it, the per-record samples computed afresh from the tables (each series' value and labels, as the
table declares them), never from our generated renderer. The collector, render and server tests
hold our one rendering path to it byte for byte."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from exporter.catalog import SPECS
from exporter.collector import DliCollector, Exposed
from exporter.discovery import Discovery
from exporter.dli.schema import REGIONS
from exporter.domain import DISCOVERED, Deadline, FoundProject, Result, Snapshot, Target
from exporter.families import Family, credential_family
from exporter.render import FamilyLike, RenderedFamily, ValueFormatter, negotiate, render
from exporter.resources import REGISTERED, Options
from exporter.resources.queues import parse_page as parse_queues
from exporter.selfmetrics import ApiStats
from tests.helpers import job, parsed

# p3 without a region: an endpoint given outright need not say; p2 found by the account's look-up.
TARGETS = (Target("p1", "http://dli", "cn-north-4"),
           Target("p2", "http://dli", "ap-southeast-1", name="ap-southeast-1_team", source=DISCOVERED),
           Target("p3", "http://dli"))
DEADLINE = Deadline(1e9, 3.0)


def queue(name: str, **fields: Any) -> dict[str, Any]:
    return {"queue_name": name, "queue_type": "general", "engine": "flink", "resource_mode": 1, "cu_count": 32,
            "cu_scale_in_limit": 16, "cu_scale_out_limit": 64, "used_cu": 24.5, "is_restarting": False,
            "elastic_resource_pool_name": "", **fields}


def golden_snapshot() -> Snapshot:
    """Every case the contract names: unknown and new statuses, nulls, odd label values, status
    descriptions (escaped, folded, cut), real and configured CUs, Flink versions and a custom
    image, a failed project with an older success, an empty project; queues read while the jobs
    failed, and the jobs read while the queues failed."""
    p1 = [parsed(raw) for raw in [
        job(3, name='quote " backslash \\ newline \n 名字', restart_times=7, has_savepoint=True,
            job_type="flink_jar_job", run_mode="exclusive_cluster", queue_name="etl"),
        job(1, status="job_running_exception", restart_times=2,
            status_desc="Job failed:\n  java.lang.OutOfMemoryError: \"Java heap space\" \\ at op 名字"),
        job(2, status=None, user_name=None, queue_name=None, run_mode=None, start_time=0, duration=None,
            restart_times=None, job_config=None),
        job(10, status="job_brand_new_status", create_time="1700000005000", restart_times="4",
            job_config={"cu_number": "8", "parallel_number": None, "checkpoint_enabled": "false",
                        "restart_when_exception": True}),
        job(11, status="job_running", has_savepoint="true", status_desc="",
            job_config={"cu_number": 4, "real_cu_number": 6, "manager_cu_number": 1, "flink_version": "1.15"}),
        # A custom image (no DLI Flink version), and a status description past the label limit.
        job(13, status="job_submit_fail", status_desc="Failed to submit: " + "no CUs left; " * 40,
            job_config={"cu_number": 2, "real_cu_number": 0, "flink_version": "1.12", "feature": "custom"}),
        # Absent booleans (no series, not 0), and v2 resources (parallelism from resource_config).
        {**job(12, job_type="flink_sql_edge_job", run_mode="edge_node",
               job_config={"cu_number": 2, "resource_config_version": "v2",
                           "resource_config": {"parallel_number": 3}}), "has_savepoint": None},
    ]]
    p1_queues = parse_queues({"is_success": True, "queues": [
        queue("etl"), queue("default", queue_type="sql", engine="spark", resource_mode=0, cu_count=16,
                            cu_scale_in_limit=None, cu_scale_out_limit=None, used_cu=None),
        queue('odd "queue"\\', resource_mode=2, is_restarting=True, elastic_resource_pool_name="pool_1")]}).records
    p2_queues = parse_queues({"is_success": True, "queues": [queue("rt", cu_count=8, used_cu=8)]}).records
    return Snapshot(
        results={
            ("p1", "jobs"): Result(p1, None, 0.25, 1_700_000_100.5, 1, 6, detail_at=1_700_000_050.25),
            ("p1", "queues"): Result(p1_queues, None, 0.05, 1_700_000_090.0, 1),
            ("p2", "jobs"): Result(None, "HTTP 500 DLI.0999: boom", 1.5, 1_700_000_101.0, detail_at=1_699_999_000.0),
            ("p2", "queues"): Result(p2_queues, None, 0.04, 1_700_000_080.0, 1),
            ("p3", "jobs"): Result([], None, 0.125, 1_700_000_100.0, 1, 0),
            ("p3", "queues"): Result(None, "HTTP 403 DLI.0013: no", 0.03, 1_700_000_100.0),
        },
        last_success={("p1", "jobs"): 1_700_000_100.5, ("p2", "jobs"): 1_699_999_000.0, ("p3", "jobs"): 1_700_000_100.0,
                      ("p1", "queues"): 1_700_000_090.0, ("p2", "queues"): 1_700_000_080.0},
    )


def golden_stats() -> ApiStats:
    stats = ApiStats()
    for seconds in (0.02, 0.04, 0.3):
        stats.observe("p1", "200", seconds)
    stats.observe("p2", "500", 1.2)
    stats.observe("p2", "error", 12.0)
    stats.retried("p2")
    stats.logged_in("p1", "201")
    stats.left_out("p1", "job.restart_times", 2)
    return stats


class FixedSweeper:
    """A sweeper that always has this snapshot; it records the deadlines it was asked by."""

    def __init__(self, snapshot: Snapshot, sweeps: int = 3, cache_hits: int = 2, targets: int = 2) -> None:
        self.snapshot = snapshot
        self.sweeps = sweeps
        self.cache_hits = cache_hits
        self.target_count = targets
        self.deadlines: list[Deadline] = []

    def get(self, targets: Sequence[Target], deadline: Deadline) -> Snapshot:
        self.deadlines.append(deadline)
        return self.snapshot


EXPOSING = ("show_detail", "per_job", "queues")  # the options that say what is exposed (the others: how)


def exposed(*, show_detail: bool = True, per_job: bool = True, queues: bool = True) -> list[Exposed]:
    """The registered resources as the settings would expose them."""
    options = Options(show_detail=show_detail, per_job=per_job)
    return [Exposed(r, r.table.exposed(r.groups(options))) for r in REGISTERED if queues or r.name != "queues"]


def golden_discovery() -> list[Family]:
    """The look-up's own series after one look-up: p2 read, a project in la-south-2 refused (403)."""
    found = [FoundProject("p2", "ap-southeast-1_team", True), FoundProject("p4", "la-south-2", True)]

    def check(target: Target, deadline: Deadline) -> Result:
        if target.project_id == "p4":
            return Result.down("HTTP 403", 0.1, 1.0, denied=True)
        return Result([], None, 0.1, 1.0)

    looked_up = Discovery((), enabled=True, lookup=lambda deadline: found, check=check,
                          place=lambda pid, region: Target(pid, "http://dli", region), served=REGIONS,
                          wall=lambda: 1_700_000_095.0)
    try:
        looked_up.look_up_now(Deadline.after(10))
        return looked_up.families()
    finally:
        looked_up.close()


def collector_for(snapshot: Snapshot, stats: ApiStats | None = None, sweeper: FixedSweeper | None = None,
                  **options: bool) -> DliCollector:
    wide = [*golden_discovery(), credential_family("HPUA...", True)]  # a refused key, held back
    return DliCollector(sweeper or FixedSweeper(snapshot), stats or golden_stats(),  # type: ignore[arg-type]
                        exposed(**options), exporter_wide=lambda: wide)


def families(snapshot: Snapshot, *, targets: Sequence[Target] = TARGETS, formatter: ValueFormatter | None = None,
             escaping: str = "underscores", stats: ApiStats | None = None, exporter_wide: bool = True,
             **options: bool) -> list[FamilyLike]:
    """The collector's families of the snapshot (``options``: what is exposed, as :func:`exposed`)."""
    fmt = formatter or ValueFormatter()
    return collector_for(snapshot, stats, **options).families(targets, DEADLINE, fmt, escaping,
                                                              exporter_wide=exporter_wide)


def ours(snapshot: Snapshot, accept: str = "", *, targets: Sequence[Target] = TARGETS, **options: Any) -> bytes:
    """Our exposition of the snapshot for ``accept``."""
    negotiated = negotiate(accept)
    formatter = ValueFormatter()
    formatter.start_render()
    return render(families(snapshot, targets=targets, formatter=formatter, escaping=negotiated.escaping, **options),
                  negotiated, formatter)


def theirs(snapshot: Snapshot, accept: str = "", *, targets: Sequence[Target] = TARGETS, **options: Any) -> bytes:
    """prometheus-client's exposition of the same scrape for ``accept``."""
    encoder, _ = choose_encoder(accept)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Prebuilt(reference_metrics(snapshot, targets, **options)))
    return encoder(registry)  # type: ignore[no-any-return]


class _Prebuilt:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def _metric(name: str, samples: Iterable[tuple[str, dict[str, str], float]]) -> Metric:
    spec = SPECS[name]
    metric = Metric(name.removesuffix("_total") if spec.type == "counter" else name, spec.help, spec.type)
    for sample in samples:
        metric.add_sample(*sample)
    return metric


def reference_metrics(snapshot: Snapshot, targets: Sequence[Target] = TARGETS, **options: Any) -> list[Metric]:
    """The scrape's metrics for prometheus-client: every per-record family computed from its table
    (records sorted by key, each series' value and labels as declared), the other families with
    the samples our collector gives them."""
    metrics = []
    tables = {s.spec.name: (e, s) for e in exposed(**{k: v for k, v in options.items() if k in EXPOSING})
              for s in e.series}
    for family in families(snapshot, targets=targets, **options):
        if isinstance(family, RenderedFamily):
            chosen, series = tables[family.name]
            table = chosen.resource.table
            samples = []
            for target in targets:
                result = snapshot.result(target.project_id, chosen.resource.name)
                for record in sorted(result.records if result and result.records is not None else [],
                                     key=attrgetter(table.key)):
                    value = series.value(record)
                    if value is not None:
                        labels = (target.project_id, str(getattr(record, table.key)), *series.label_values(record))
                        samples.append((series.spec.name, dict(zip(series.spec.labels, labels, strict=True)), value))
            metrics.append(_metric(family.name, samples))
        else:
            metrics.append(_metric(family.name, [(n, dict(zip(names, values, strict=True)), v)
                                                 for n, names, values, v in getattr(family, "samples")]))  # noqa: B009
    return metrics
