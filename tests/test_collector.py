"""The collector and the one rendering path, held to the contract, to golden files, and byte for byte
to prometheus-client's encoders (over samples computed from the tables: tests/reference.py)."""

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
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.catalog import METRICS, SPECS
from exporter.domain import Deadline, Result, Snapshot
from exporter.render import ValueFormatter, format_value, negotiate, parse_content_type
from exporter.resources import REGISTERED
from exporter.selfmetrics import ApiStats
from tests.helpers import examples, parse, parsed
from tests.reference import TARGETS, FixedSweeper, collector_for, golden_snapshot, golden_stats, ours, theirs

GOLDEN = Path(__file__).resolve().parent / "golden"
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "metrics.md"
README = Path(__file__).resolve().parents[1] / "README.md"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


def check_golden(name: str, output: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(output)
    assert output == path.read_bytes(), f"{name} differs; UPDATE_GOLDEN=1 rewrites it after review"


def test_golden_text_exposition() -> None:
    output = ours(golden_snapshot())
    assert output == theirs(golden_snapshot())
    check_golden("metrics.prom", output)


def test_golden_openmetrics_exposition() -> None:
    output = ours(golden_snapshot(), OPENMETRICS)
    assert output == theirs(golden_snapshot(), OPENMETRICS)
    check_golden("metrics.openmetrics", output)


def test_the_exposition_passes_promtool(promtool: Callable[[bytes], subprocess.CompletedProcess[bytes]]) -> None:
    """promtool lints what the exporter renders now, not a committed file."""
    result = promtool(ours(golden_snapshot()))
    assert result.returncode == 0, result.stdout + result.stderr


def golden() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return parse(ours(golden_snapshot()).decode())


def value(metric: str, **labels: str) -> float | None:
    return golden().get((metric, frozenset(labels.items())))


def names_of(project: str) -> set[str]:
    return {name for name, labels in golden() if ("project_id", project) in labels}


def test_contract_values() -> None:
    assert value("dli_job_status", project_id="p1", job_id="2", status="unknown") == 1
    assert value("dli_job_status", project_id="p1", job_id="10", status="job_brand_new_status") == 1
    assert value("dli_job_info", project_id="p1", job_id="2", name="job-2", job_type="flink_sql_job", queue="",
                 run_mode="", user_name="", flink_version="") == 1
    # DLI's reason, folded to one line, only while there is one; cut at the label limit.
    assert value("dli_job_status_description_info", project_id="p1", job_id="1",
                 description='Job failed: java.lang.OutOfMemoryError: "Java heap space" \\ at op 名字') == 1
    assert [dict(labels)["job_id"] for name, labels in golden() if name == "dli_job_status_description_info"] == [
        "1", "13"]
    # The CUs a job runs on: real_cu_number when above 0, else cu_number; the JobManager's apart.
    assert value("dli_job_compute_units", project_id="p1", job_id="11") == 6
    assert value("dli_job_compute_units", project_id="p1", job_id="13") == 2
    assert value("dli_job_manager_compute_units", project_id="p1", job_id="11") == 1
    assert {dict(labels)["flink_version"] for name, labels in golden() if name == "dli_job_info"} == {
        "", "1.15", "custom"}
    assert value("dli_api_field_errors_total", project_id="p1", field="job.restart_times") == 2
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
    assert value("dli_scrape_timeout_seconds") == 3.0  # the scrape's deadline's


def test_queue_values() -> None:
    assert value("dli_queue_info", project_id="p1", queue="etl", queue_type="general", resource_mode="dedicated",
                 engine="flink", elastic_resource_pool="") == 1
    assert value("dli_queue_info", project_id="p1", queue="default", queue_type="sql", resource_mode="shared",
                 engine="spark", elastic_resource_pool="") == 1
    assert value("dli_queue_info", project_id="p1", queue='odd "queue"\\', queue_type="general", resource_mode="2",
                 engine="flink", elastic_resource_pool="pool_1") == 1
    assert value("dli_queue_compute_units", project_id="p1", queue="etl") == 32
    assert (value("dli_queue_compute_units_min", project_id="p1", queue="etl"),
            value("dli_queue_compute_units_max", project_id="p1", queue="etl")) == (16, 64)
    assert value("dli_queue_compute_units_min", project_id="p1", queue="default") is None  # none given: absent
    assert value("dli_queue_used_compute_units", project_id="p1", queue="etl") == 24.5
    assert value("dli_queue_used_compute_units", project_id="p1", queue="default") is None
    assert value("dli_queue_restarting", project_id="p1", queue='odd "queue"\\') == 1
    assert value("dli_queue_restarting", project_id="p1", queue="etl") == 0


def test_each_resource_is_up_or_down_alone() -> None:
    """p2's jobs failed while its queues were read; p3's queues failed while its jobs were read:
    each withholds only its own series, and dli_up is the jobs' alone."""
    assert (value("dli_resource_up", project_id="p2", resource="jobs"),
            value("dli_resource_up", project_id="p2", resource="queues")) == (0, 1)
    assert (value("dli_resource_up", project_id="p3", resource="jobs"),
            value("dli_resource_up", project_id="p3", resource="queues")) == (1, 0)
    assert value("dli_up", project_id="p2") == 0 and value("dli_up", project_id="p3") == 1
    assert value("dli_queue_compute_units", project_id="p2", queue="rt") == 8
    assert not {n for n in names_of("p3") if n.startswith("dli_queue_")}
    assert value("dli_resource_last_success_timestamp_seconds", project_id="p1", resource="queues") == 1_700_000_090
    assert value("dli_resource_last_success_timestamp_seconds", project_id="p3", resource="queues") is None


def test_a_failed_project_has_no_job_series_and_others_are_untouched() -> None:
    assert {n for n in names_of("p2") if n.startswith("dli_job")} == set()
    assert {n for n in names_of("p2") if not n.startswith("dli_queue")} == {
        "dli_project_info", "dli_up", "dli_scrape_duration_seconds", "dli_last_success_timestamp_seconds",
        "dli_detail_last_success_timestamp_seconds", "dli_resource_up", "dli_resource_last_success_timestamp_seconds",
        "dli_api_requests_total", "dli_api_request_duration_seconds_bucket", "dli_api_request_duration_seconds_count",
        "dli_api_request_duration_seconds_sum", "dli_api_retries_total"}
    assert {"dli_jobs", "dli_job_info", "dli_job_status"} <= names_of("p1")


def test_absent_booleans_give_no_series_and_v2_parallelism_is_exported() -> None:
    lines = [line for line in ours(golden_snapshot()).decode().splitlines() if 'job_id="12"' in line]
    assert not [line for line in lines if line.startswith(("dli_job_has_savepoint", "dli_job_checkpoint_enabled",
                                                           "dli_job_auto_restart_enabled"))]
    assert 'dli_job_parallelism{job_id="12",project_id="p1"} 3.0' in lines


def test_a_job_that_disappears_vanishes() -> None:
    snapshot = golden_snapshot()
    assert b'job_id="11"' in ours(snapshot)
    p1 = snapshot.results["p1", "jobs"]
    snapshot.results["p1", "jobs"] = Result([j for j in p1.records or [] if j.job_id != 11], None, 0.1, 0.0)
    assert b'job_id="11"' not in ours(snapshot)


def test_per_job_series_can_be_turned_off() -> None:
    output = parse(ours(golden_snapshot(), per_job=False).decode())
    assert not any(name.startswith("dli_job_") for name, _ in output)
    assert any(name == "dli_jobs" for name, _ in output)
    assert any(name == "dli_queue_info" for name, _ in output)  # queues are not per-job series


def test_detail_series_only_with_show_detail() -> None:
    output = ours(golden_snapshot(), show_detail=False)
    assert b"dli_job_compute_units" not in output and b"dli_job_parallelism" not in output
    assert b"dli_job_info" in output


def test_queues_can_be_turned_off() -> None:
    output = ours(golden_snapshot(), queues=False)
    assert b"dli_queue" not in output and b'resource="queues"' not in output
    assert b'dli_resource_up{project_id="p1",resource="jobs"} 1.0' in output


def test_every_spec_is_exposed_with_its_type_and_labels() -> None:
    stats = golden_stats()
    stats.web_config_loaded(True)  # the web config's gauge exists only with a web config file
    families = {f.name: f for f in text_string_to_metric_families(ours(golden_snapshot(), stats=stats).decode())}
    for spec in METRICS:
        base = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        family = families[base]
        assert family.type == spec.type, spec.name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), spec.name


def test_the_collector_passes_the_scrape_deadline_down() -> None:
    sweeper = FixedSweeper(golden_snapshot())
    collector = collector_for(golden_snapshot(), sweeper=sweeper)
    deadline = Deadline(42.0, 3.0)
    collector.families(TARGETS, deadline, format_value)
    assert sweeper.deadlines == [deadline]  # the very object: one deadline per scrape


def test_a_probe_has_its_project_and_no_exporter_wide_series() -> None:
    got = parse(ours(golden_snapshot(), targets=TARGETS[:1], exporter_wide=False).decode())
    assert {dict(labels).get("project_id") for _, labels in got} == {"p1", None}
    assert not {name for name, _ in got} & {"dli_api_requests_total", "dli_sweeps_total", "dli_targets"}
    assert ("dli_scrape_timeout_seconds", frozenset()) in got


def _table(markdown: str, first_header: str, after: str = "") -> list[list[str]]:
    rows = []
    in_table = False
    start = markdown.index(after) if after else 0
    for line in markdown[start:].splitlines():
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
    """The label names of a table cell: its code spans, those in parentheses (values) left out."""
    return set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cell)))


def _contract() -> str:
    if not CONTRACT.exists():
        # CI lays shared/ beside its clone: there a missing contract is a failure, never a skip.
        if os.environ.get("CI"):
            pytest.fail(f"the contract is missing: {CONTRACT}")
        pytest.skip("the contract lives in ../shared beside the checkout")
    return CONTRACT.read_text()


def _names(cell: str) -> list[str]:
    """`a`, `b` in one cell: each metric the row is about."""
    return re.findall(r"`(dli_[a-z_]+)`", cell)


@pytest.mark.parametrize("heading", ["## Metrics", "## Queues"])
def test_matches_the_contract_tables(heading: str) -> None:
    rows = _table(_contract(), "name", heading)
    assert rows
    for name_cell, type_cell, labels_cell, _ in rows:
        for name in _names(name_cell):
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


def test_every_resource_is_in_the_readme_and_has_a_health_series() -> None:
    readme = README.read_text()
    for resource in REGISTERED:
        assert f'resource="{resource.name}"' in readme or f"`{resource.name}`" in readme, resource.name


@pytest.mark.parametrize(("show_detail", "per_job", "queues"),
                         [(True, True, True), (False, True, True), (True, False, True), (True, True, False)])
def test_the_renderer_matches_prometheus_client_byte_for_byte(show_detail: bool, per_job: bool, queues: bool) -> None:
    options = {"show_detail": show_detail, "per_job": per_job, "queues": queues}
    for accept in ("", OPENMETRICS):
        assert ours(golden_snapshot(), accept, **options) == theirs(golden_snapshot(), accept, **options)


def test_the_value_formatters_memory_changes_no_byte() -> None:
    formatter = ValueFormatter()
    expected = (GOLDEN / "metrics.openmetrics").read_bytes()
    negotiated = negotiate(OPENMETRICS)
    from exporter.render import render
    from tests.reference import families

    for _ in range(3):
        formatter.start_render()
        got = render(families(golden_snapshot(), formatter=formatter), negotiated, formatter)
        assert got == expected


@pytest.mark.parametrize("number", [0, 1, 0.5, 2, 1e-9, 1_700_000_000.123, 12345678.0, -3.25, float("inf"),
                                    float("-inf"), float("nan"), True, False, 10**20, 999_999, 1_000_000, -7, 1e16,
                                    1e22, 123456.0, 1234567.0, 0.0, -0.0, 1e6, 999_999.999, 1e-7, 5e-324,
                                    -1e6, 1.7e308])
def test_value_formatting_matches_prometheus_client(number: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert format_value(number) == floatToGoString(number)
    remembering = ValueFormatter()
    assert remembering(number) == remembering(number) == floatToGoString(number)
    assert remembering(-0.0) == "-0.0" and remembering(0.0) == "0.0"


def test_the_value_formatter_forgets_values_unused_for_two_renders() -> None:
    from exporter.render import render_text
    from tests.reference import families

    formatter = ValueFormatter()
    formatter.start_render()
    first = render_text(families(golden_snapshot(), formatter=formatter), formatter)
    formatter.start_render()
    assert render_text(families(golden_snapshot(), formatter=formatter), formatter) == first
    remembered = len(formatter._current)
    assert 0 < remembered < 40
    formatter.start_render()
    formatter.start_render()
    assert len(formatter._current) == len(formatter._previous) == 0


@pytest.mark.property
@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70)))
def test_value_formatting_matches_prometheus_client_everywhere(number: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert format_value(number) == floatToGoString(number)


def test_content_types() -> None:
    prometheus_accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert negotiate(prometheus_accept).content_type == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    assert negotiate("").content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert negotiate("application/openmetrics-text").format == "openmetrics"
    assert negotiate("text/plain;version=1.0.0;escaping=dots").escaping == "dots"
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
def test_the_renderer_matches_prometheus_client_on_any_text(raws: list[dict[str, Any]]) -> None:
    snapshot = Snapshot({("p1", "jobs"): Result([parsed(r) for r in raws], None, 0.5, 1.0)}, {("p1", "jobs"): 1.0})
    for accept in ("", OPENMETRICS):
        assert ours(snapshot, accept, targets=TARGETS[:1]) == theirs(snapshot, accept, targets=TARGETS[:1])


def test_an_empty_scrape_is_valid() -> None:
    """No project at all (a /probe-only exporter's /metrics, or one whose look-up found none yet):
    the exporter's own series (the look-up's among them), nothing else."""
    empty = ours(Snapshot({}), targets=(), stats=ApiStats())
    assert empty == theirs(Snapshot({}), targets=(), stats=ApiStats())
    assert {name for name, _ in parse(empty.decode())} == {
        "dli_scrape_timeout_seconds", "dli_sweeps_total", "dli_cache_hits_total", "dli_targets",
        "dli_exporter_build_info", "dli_discovered_projects", "dli_discovery_last_success_timestamp_seconds",
        "dli_credential_held"}
