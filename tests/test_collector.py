"""The mapping from a sweep to metric families, held to the contract and to golden files."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.catalog import METRICS, SPECS
from exporter.collector import DliCollector
from exporter.dli.schema import parse_job
from exporter.domain import ProjectResult, ScrapeRequest, Snapshot
from exporter.render import (
    Negotiated,
    ValueFormatter,
    format_value,
    negotiate,
    parse_content_type,
    render_openmetrics,
    render_text,
)
from exporter.selfmetrics import ApiStats
from tests.helpers import examples, job

GOLDEN = Path(__file__).resolve().parent / "golden"
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "metrics.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def parsed(raws: list[dict[str, Any]]) -> list[Any]:
    return [parse_job(r) for r in raws]


# p3 without a region: an endpoint given outright need not say.
GOLDEN_REGIONS = {"p1": "cn-north-4", "p2": "ap-southeast-1"}


def golden_snapshot() -> Snapshot:
    """Every case the contract names: unknown and new statuses, nulls, odd label values, a failed
    project with an older success, and an empty project."""
    p1 = parsed([
        job(3, name='quote " backslash \\ newline \n 名字', restart_times=7, has_savepoint=True,
            job_type="flink_jar_job", run_mode="exclusive_cluster", queue_name="etl"),
        job(1, status="job_running_exception", restart_times=2),
        job(2, status=None, user_name=None, queue_name=None, run_mode=None, start_time=0, duration=None,
            restart_times=None, job_config=None),
        job(10, status="job_brand_new_status", create_time="1700000005000", restart_times="4",
            job_config={"cu_number": "8", "parallel_number": None, "checkpoint_enabled": "false",
                        "restart_when_exception": True}),
        job(11, status="job_running", has_savepoint="true"),
        # Absent booleans (no series, not 0), and v2 resources (parallelism from resource_config).
        {**job(12, job_type="flink_sql_edge_job", run_mode="edge_node",
               job_config={"cu_number": 2, "resource_config_version": "v2",
                           "resource_config": {"parallel_number": 3}}), "has_savepoint": None},
    ])
    return Snapshot(
        results={
            "p1": ProjectResult("p1", p1, None, 0.25, 1_700_000_100.5, 1, 6, detail_at=1_700_000_050.25),
            "p2": ProjectResult("p2", None, "HTTP 500 DLI.0999: boom", 1.5, 1_700_000_101.0,
                                detail_at=1_699_999_000.0),
            "p3": ProjectResult("p3", [], None, 0.125, 1_700_000_100.0, 1, 0),
        },
        last_success={"p1": 1_700_000_100.5, "p2": 1_699_999_000.0, "p3": 1_700_000_100.0},
    )


def golden_stats() -> ApiStats:
    stats = ApiStats()
    for seconds in (0.02, 0.04, 0.3):
        stats.observe("p1", "200", seconds)
    stats.observe("p2", "500", 1.2)
    stats.observe("p2", "error", 12.0)
    stats.retried("p2")
    stats.logged_in("p1", "201")
    return stats


class FixedSource:
    def __init__(self, snapshot: Snapshot, sweeps: int = 3, cache_hits: int = 2, targets: int = 2) -> None:
        self.snapshot = snapshot
        self.sweeps = sweeps
        self.cache_hits = cache_hits
        self.held = targets
        self.deadlines: list[float] = []

    def get(self, deadline: float) -> Snapshot:
        self.deadlines.append(deadline)
        return self.snapshot


def registry_for(snapshot: Snapshot, stats: ApiStats | None = None, **kwargs: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    kwargs.setdefault("show_detail", True)
    kwargs.setdefault("regions", GOLDEN_REGIONS)
    registry.register(DliCollector(FixedSource(snapshot), stats or golden_stats(), ["p1", "p2", "p3"], **kwargs))
    return registry


def samples(exposition: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def names_of(exposition: bytes, project: str) -> set[str]:
    return {name for name, labels in samples(exposition) if ("project_id", project) in labels}


def check_golden(name: str, output: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(output)
    assert output == path.read_bytes(), f"{name} differs; UPDATE_GOLDEN=1 rewrites it after review"


def test_golden_text_exposition() -> None:
    check_golden("metrics.prom", generate_latest(registry_for(golden_snapshot())))


def test_golden_openmetrics_exposition() -> None:
    check_golden("metrics.openmetrics", generate_openmetrics(registry_for(golden_snapshot())))


def test_the_exposition_passes_promtool(promtool: Callable[[bytes], subprocess.CompletedProcess[bytes]]) -> None:
    """promtool lints what the exporter renders now (both paths, text format), not a committed file."""
    snapshot = golden_snapshot()
    for output in (generate_latest(registry_for(snapshot)), render_text(_fast(snapshot))):
        result = promtool(output)
        assert result.returncode == 0, result.stdout + result.stderr


def test_contract_values() -> None:
    got = samples(generate_latest(registry_for(golden_snapshot())))

    def value(metric: str, **labels: str) -> float | None:
        return got.get((metric, frozenset(labels.items())))

    assert value("dli_job_status", project_id="p1", job_id="2", status="unknown") == 1
    assert value("dli_job_status", project_id="p1", job_id="10", status="job_brand_new_status") == 1
    assert value("dli_job_info", project_id="p1", job_id="2", name="job-2", job_type="flink_sql_job", queue="",
                 run_mode="", user_name="") == 1
    assert value("dli_job_restarts_total", project_id="p1", job_id="10") == 4
    assert value("dli_job_restarts_total", project_id="p1", job_id="2") is None
    assert value("dli_job_duration_seconds", project_id="p1", job_id="1") == 3600
    assert value("dli_job_duration_seconds", project_id="p1", job_id="2") is None
    assert value("dli_job_started_timestamp_seconds", project_id="p1", job_id="2") is None
    assert value("dli_job_started_timestamp_seconds", project_id="p1", job_id="1") == 1_700_000_101
    assert value("dli_job_created_timestamp_seconds", project_id="p1", job_id="10") == 1_700_000_005
    assert value("dli_job_has_savepoint", project_id="p1", job_id="3") == 1
    assert value("dli_job_has_savepoint", project_id="p1", job_id="11") == 1
    assert value("dli_job_has_savepoint", project_id="p1", job_id="1") == 0
    assert value("dli_job_compute_units", project_id="p1", job_id="10") == 8
    assert value("dli_job_parallelism", project_id="p1", job_id="10") is None
    assert value("dli_job_checkpoint_enabled", project_id="p1", job_id="10") == 0
    assert value("dli_job_auto_restart_enabled", project_id="p1", job_id="10") == 1
    assert value("dli_job_compute_units", project_id="p1", job_id="2") is None  # no job_config
    assert value("dli_jobs", project_id="p1", status="job_running", job_type="flink_sql_job", queue="default",
                 run_mode="shared_cluster") == 1
    assert value("dli_up", project_id="p1") == 1 and value("dli_up", project_id="p2") == 0
    assert value("dli_up", project_id="p3") == 1
    assert value("dli_last_success_timestamp_seconds", project_id="p2") == 1_699_999_000
    assert value("dli_scrape_duration_seconds", project_id="p2") == 1.5
    assert value("dli_api_requests_total", project_id="p2", code="error") == 1
    assert value("dli_api_request_duration_seconds_bucket", project_id="p1", le="0.05") == 2
    assert value("dli_api_request_duration_seconds_bucket", project_id="p2", le="+Inf") == 2
    assert value("dli_exporter_build_info", version=__version__) == 1
    assert value("dli_sweeps_total") == 3 and value("dli_cache_hits_total") == 2


def test_a_failed_project_has_no_job_series_and_others_are_untouched() -> None:
    output = generate_latest(registry_for(golden_snapshot()))
    assert names_of(output, "p2") == {"dli_project_info", "dli_up", "dli_scrape_duration_seconds",
                                      "dli_last_success_timestamp_seconds",
                                      "dli_detail_last_success_timestamp_seconds",
                                      "dli_api_requests_total", "dli_api_request_duration_seconds_bucket",
                                      "dli_api_request_duration_seconds_count", "dli_api_request_duration_seconds_sum",
                                      "dli_api_retries_total"}
    assert {"dli_jobs", "dli_job_info", "dli_job_status"} <= names_of(output, "p1")


def test_absent_booleans_give_no_series_and_v2_parallelism_is_exported() -> None:
    output = generate_latest(registry_for(golden_snapshot())).decode()
    lines = [line for line in output.splitlines() if 'job_id="12"' in line]
    assert not [line for line in lines if line.startswith(("dli_job_has_savepoint", "dli_job_checkpoint_enabled",
                                                           "dli_job_auto_restart_enabled"))]
    assert 'dli_job_parallelism{job_id="12",project_id="p1"} 3.0' in lines


def test_a_job_that_disappears_vanishes() -> None:
    snap = golden_snapshot()
    source = FixedSource(snap)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DliCollector(source, ApiStats(), ["p1"]))
    assert b'job_id="11"' in generate_latest(registry)
    p1 = snap.results["p1"]
    source.snapshot = Snapshot({"p1": ProjectResult("p1", [j for j in p1.jobs or [] if j.job_id != 11], None, 0.1,
                                                    0.0)}, {})
    assert b'job_id="11"' not in generate_latest(registry)


def test_per_job_series_can_be_turned_off() -> None:
    output = generate_latest(registry_for(golden_snapshot(), per_job=False))
    assert not any(name.startswith("dli_job_") for name, _ in samples(output))
    assert any(name == "dli_jobs" for name, _ in samples(output))


def test_detail_series_only_with_show_detail() -> None:
    output = generate_latest(registry_for(golden_snapshot(), show_detail=False))
    assert b"dli_job_compute_units" not in output and b"dli_job_parallelism" not in output
    assert b"dli_job_info" in output


def test_every_spec_is_exposed_with_its_type_and_labels() -> None:
    stats = golden_stats()
    stats.web_config_loaded(True)  # the web config's gauge exists only with a web config file
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry_for(golden_snapshot(), stats)).decode())}
    for spec in METRICS:
        base = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        family = families[base]
        assert family.type == spec.type, spec.name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), spec.name


def test_the_collector_passes_the_scrape_deadline() -> None:
    source = FixedSource(golden_snapshot())
    registry = CollectorRegistry(auto_describe=False)
    collector = DliCollector(source, ApiStats(), ["p1"], default_timeout=7, clock=lambda: 100.0)
    registry.register(collector)
    generate_latest(registry)  # a registry's collect(): the default timeout
    collector.fast_families(format_value, ScrapeRequest(42.0, 3.0))
    collector.families(ScrapeRequest(43.0, 3.0))
    assert source.deadlines == [107.0, 42.0, 43.0]


def _table(markdown: str, first_header: str) -> list[list[str]]:
    rows = []
    in_table = False
    for line in markdown.splitlines():
        if line.startswith(f"| {first_header} |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            if set(line) <= set("|- "):
                continue
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _labels(cell: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", cell.split("(", maxsplit=1)[0]))


def test_matches_the_contract_table() -> None:
    if not CONTRACT.exists():
        # CI lays shared/ beside its clone: there a missing contract is a failure, never a skip.
        if os.environ.get("CI"):
            pytest.fail(f"the contract is missing: {CONTRACT}")
        pytest.skip("the contract lives in ../shared beside the checkout")
    rows = _table(CONTRACT.read_text(), "name")
    assert len(rows) >= 17
    for name_cell, type_cell, labels_cell, _ in rows:
        name = name_cell.strip("`")
        spec = SPECS[name]
        assert spec.type == type_cell, name
        expected = _labels(labels_cell)
        if "no `project_id`" not in labels_cell:
            expected.add("project_id")
        assert set(spec.labels) == expected, name


def test_the_readme_mirrors_the_table() -> None:
    rows = _table(README.read_text(), "metric")
    readme = {row[0].strip("`"): row for row in rows}
    assert set(readme) == set(SPECS), "README's metrics table and catalog.METRICS differ"
    for name, (_, type_cell, labels_cell, help_cell) in readme.items():
        spec = SPECS[name]
        assert type_cell == spec.type, name
        assert _labels(labels_cell) == set(spec.labels), name
        assert help_cell == spec.help, name


def _families(snapshot: Snapshot, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("show_detail", True)
    kwargs.setdefault("regions", GOLDEN_REGIONS)
    return DliCollector(FixedSource(snapshot), golden_stats(), ["p1", "p2", "p3"], **kwargs).families()


def _fast(snapshot: Snapshot, fmt: Any = format_value, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("show_detail", True)
    kwargs.setdefault("regions", GOLDEN_REGIONS)
    return DliCollector(FixedSource(snapshot), golden_stats(), ["p1", "p2", "p3"], **kwargs).fast_families(fmt)


@pytest.mark.parametrize(("show_detail", "per_job"), [(True, True), (False, True), (True, False)])
def test_fast_renderers_match_prometheus_client_byte_for_byte(show_detail: bool, per_job: bool) -> None:
    snapshot = golden_snapshot()
    registry = registry_for(snapshot, show_detail=show_detail, per_job=per_job)
    options = {"show_detail": show_detail, "per_job": per_job}
    assert render_text(_families(snapshot, **options)) == generate_latest(registry)
    assert render_openmetrics(_families(snapshot, **options)) == generate_openmetrics(registry)
    # The fused path (per-job series rendered while mapping) gives the same bytes too.
    assert render_text(_fast(snapshot, **options)) == generate_latest(registry)
    assert render_openmetrics(_fast(snapshot, **options)) == generate_openmetrics(registry)


def test_fast_renderers_reproduce_the_golden_files() -> None:
    assert render_text(_families(golden_snapshot())) == (GOLDEN / "metrics.prom").read_bytes()
    assert render_openmetrics(_families(golden_snapshot())) == (GOLDEN / "metrics.openmetrics").read_bytes()
    formatter = ValueFormatter()
    for _ in range(3):  # the formatter's memory must not change a byte
        formatter.start_render()
        assert render_openmetrics(_fast(golden_snapshot(), formatter), formatter) == (
            GOLDEN / "metrics.openmetrics").read_bytes()


@pytest.mark.parametrize("value", [0, 1, 0.5, 2, 1e-9, 1_700_000_000.123, 12345678.0, -3.25, float("inf"),
                                   float("-inf"), float("nan"), True, False, 10**20, 999_999, 1_000_000, -7, 1e16,
                                   1e22, 123456.0, 1234567.0, 0.0, -0.0, 1e6, 999_999.999, 1e-7, 5e-324,
                                   -1e6, 1.7e308])
def test_value_formatting_matches_prometheus_client(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert format_value(value) == floatToGoString(value)
    remembering = ValueFormatter()
    assert remembering(value) == remembering(value) == floatToGoString(value)
    assert remembering(-0.0) == "-0.0" and remembering(0.0) == "0.0"


def test_the_value_formatter_forgets_values_unused_for_two_renders() -> None:
    formatter = ValueFormatter()
    families = _families(golden_snapshot())
    formatter.start_render()
    first = render_text(families, formatter)
    formatter.start_render()
    assert render_text(families, formatter) == first  # rendered from remembered values
    remembered = len(formatter._current)
    assert 0 < remembered < 30
    formatter.start_render()
    formatter.start_render()
    assert len(formatter._current) == len(formatter._previous) == 0


@pytest.mark.property
@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70)))
def test_value_formatting_matches_prometheus_client_everywhere(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert format_value(value) == floatToGoString(value)


def test_content_types_with_a_fast_path() -> None:
    prometheus_accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert negotiate(prometheus_accept)[0] == Negotiated(
        "openmetrics", "1.0.0", "underscores", "application/openmetrics-text; version=1.0.0; charset=utf-8; "
        "escaping=underscores")
    assert negotiate("")[0] == Negotiated("text", "0.0.4", "underscores", "text/plain; version=0.0.4; charset=utf-8")
    assert negotiate("application/openmetrics-text")[0] == Negotiated(
        "openmetrics", "1.0.0", "underscores", "application/openmetrics-text; version=1.0.0; charset=utf-8")
    # Every escaping scheme has the fast path (ours are legacy names; dots doubles underscores).
    assert negotiate("text/plain;version=1.0.0;escaping=dots")[0] == Negotiated(
        "text", "1.0.0", "dots", "text/plain; version=1.0.0; charset=utf-8; escaping=dots")
    assert parse_content_type("application/json") is None


@pytest.mark.property
@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "job_id": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "name": st.text(), "status": st.one_of(st.none(), st.text()), "queue_name": st.one_of(st.none(), st.text()),
    "user_name": st.text(), "run_mode": st.text(max_size=5), "job_type": st.text(max_size=5),
    "restart_times": st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
    "duration": st.one_of(st.none(), st.integers(min_value=0, max_value=2**50)),
    "create_time": st.one_of(st.none(), st.integers(min_value=0, max_value=2**45)),
    "start_time": st.one_of(st.none(), st.integers(min_value=0, max_value=2**45)),
    "has_savepoint": st.booleans(),
    "job_config": st.one_of(st.none(), st.fixed_dictionaries({
        "cu_number": st.integers(min_value=0, max_value=10**6), "parallel_number": st.integers(0, 10**6),
        "checkpoint_enabled": st.booleans(), "restart_when_exception": st.booleans()})),
}), max_size=8))
def test_fast_renderers_match_prometheus_client_on_any_text(raws: list[dict[str, Any]]) -> None:
    snapshot = Snapshot({"p1": ProjectResult("p1", parsed(raws), None, 0.5, 1.0)}, {"p1": 1.0})
    registry = registry_for(snapshot)
    families = _families(snapshot)
    formatter = ValueFormatter()
    assert render_text(families, formatter) == generate_latest(registry)
    assert render_openmetrics(families, formatter) == generate_openmetrics(registry)
    assert render_text(_fast(snapshot, formatter), formatter) == generate_latest(registry)
    assert render_openmetrics(_fast(snapshot, formatter), formatter) == generate_openmetrics(registry)
