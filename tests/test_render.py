"""Negotiation and the fast renderer, held byte for byte to prometheus-client's encoders.

Every content type prometheus-client can negotiate is rendered by our one path, for Prometheus
2's and 3's real default Accept headers among others; the per-record lines, generated from each
resource's table, escape any label value (and a text key) the way prometheus-client does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.domain import Result, Snapshot, Target
from exporter.render import SCHEMES, negotiate
from exporter.resources import REGISTERED
from exporter.resources.jobs.record import Job
from exporter.resources.queues import Queue
from tests.reference import golden_snapshot, ours, theirs

# https://prometheus.io/docs/instrumenting/content_negotiation/#default-accept-header
PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
                "text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
ACCEPTS = [PROMETHEUS_2, PROMETHEUS_3, "", "text/plain", "text/plain;version=0.0.4", "application/openmetrics-text",
           "application/openmetrics-text;version=2.0.0",
           *(f"text/plain;version=1.0.0;escaping={s}" for s in SCHEMES),
           *(f"application/openmetrics-text;version=1.0.0;escaping={s}" for s in SCHEMES if s != "values"),
           "application/openmetrics-text;version=1.0.0;escaping=nonsense"]


def both(snapshot: Snapshot, accept: str, **kwargs: Any) -> tuple[bytes, bytes]:
    """(ours, prometheus-client's) for one Accept header."""
    return ours(snapshot, accept, **kwargs), theirs(snapshot, accept, **kwargs)


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize(("show_detail", "per_job"), [(True, True), (False, True), (True, False)])
def test_every_negotiable_format_is_rendered_byte_for_byte(accept: str, show_detail: bool, per_job: bool) -> None:
    ours, theirs = both(golden_snapshot(), accept, show_detail=show_detail, per_job=per_job)
    assert ours == theirs


def test_prometheus_2_and_3_get_openmetrics_that_parses() -> None:
    for accept, escaping in ((PROMETHEUS_2, "underscores"), (PROMETHEUS_3, "allow-utf-8")):
        negotiated = negotiate(accept)
        assert (negotiated.format, negotiated.escaping) == ("openmetrics", escaping)
        assert negotiated.content_type.startswith("application/openmetrics-text; version=1.0.0")
        ours, _ = both(golden_snapshot(), accept)
        names = {f.name for f in parse_openmetrics(ours.decode())}  # strict: raises on any flaw
        assert {"dli_jobs", "dli_job_info", "dli_up", "dli_api_requests", "dli_queue_info"} <= names


def test_dots_escaping_doubles_underscores_in_every_name() -> None:
    ours, theirs = both(golden_snapshot(), "text/plain;version=1.0.0;escaping=dots")
    assert ours == theirs
    assert b'dli__job__info{flink__version="",job__id="1",job__type="flink_sql_job"' in ours
    assert b"# TYPE dli__api__requests__total counter" in ours


def test_values_escaping_leaves_legacy_names_as_they_are() -> None:
    """Under ``values``, a valid legacy name is left as it is (Prometheus' own escaping, and the
    HELP and TYPE lines of prometheus-client). prometheus-client 0.26's OpenMetrics encoder alone
    writes its sample names U__-escaped, under TYPE lines that are not: there we follow the
    specification, so the answer is the ``underscores`` one."""
    ours, theirs = both(golden_snapshot(), "application/openmetrics-text;version=1.0.0;escaping=values")
    plain, _ = both(golden_snapshot(), "application/openmetrics-text;version=1.0.0;escaping=underscores")
    assert ours == plain
    assert b"\nU__dli__up{" in theirs and b"# TYPE dli_up gauge" in theirs  # the client's inconsistency
    text, their_text = both(golden_snapshot(), "text/plain;version=1.0.0;escaping=values")
    assert text == their_text == both(golden_snapshot(), "")[0]


NASTY = 'a"b\\c\nd'


def _job(**fields: Any) -> Job:
    base = Job(job_id=7, name="n", job_type="t", status="s", status_desc="", queue="q", run_mode="r", user_name="u",
               create_time_ms=1_000, start_time_ms=2_000, duration_ms=3_000, restarts=1, savepoint=True,
               compute_units=2, parallelism=1, checkpoints=True, auto_restart=False)
    return dataclasses.replace(base, **fields)


def _queue(**fields: Any) -> Queue:
    base = Queue(name="q", queue_type="general", resource_mode="dedicated", engine="flink",
                 elastic_resource_pool="p", compute_units=16, compute_units_min=8, compute_units_max=32,
                 used_compute_units=4.5, restarting=False)
    return dataclasses.replace(base, **fields)


RECORDS = {"jobs": (Job, _job, {"job_id": 8}), "queues": (Queue, _queue, {"name": "other"})}
TEXT_FIELDS = [(resource, f.name) for resource, (cls, _, _) in RECORDS.items()
               for f in dataclasses.fields(cls) if f.type in ("str", str)]


def _snapshot(resource: str, first: object, second: object, project: str = "p1") -> Snapshot:
    return Snapshot({(project, resource): Result([first, second], None, 0.1, 1.0)}, {(project, resource): 1.0})


@pytest.mark.parametrize(("resource", "field"), TEXT_FIELDS)
@pytest.mark.parametrize("accept", [PROMETHEUS_2, PROMETHEUS_3, ""])
@pytest.mark.parametrize("text", [NASTY, 'say "hi"', "back\\slash", "two\nlines"])
def test_any_text_field_is_escaped_as_prometheus_client_escapes_it(resource: str, field: str, accept: str,
                                                                   text: str) -> None:
    """Whichever label a text field feeds (a queue's name is its key), in whichever per-record
    series: a quote, a backslash or a newline in it, alone or together, is escaped exactly as
    prometheus-client does (else the line would not parse)."""
    _, make, other = RECORDS[resource]
    snapshot = _snapshot(resource, make(**{field: text}), make(**other))
    targets = (Target("p1", "http://dli"),)
    mine, reference = both(snapshot, accept, targets=targets)
    assert mine == reference
    parse = parse_openmetrics if b"# EOF" in mine else parse_text
    values = {v for f in parse(mine.decode()) for s in f.samples for v in s.labels.values()}
    assert text in values


def test_every_labelled_series_is_covered_by_the_text_fields() -> None:
    """The escaping test above reaches every label of every per-record series of every resource."""
    for resource in REGISTERED:
        _, make, _ = RECORDS[resource.name]
        record = make(**{field: f"<{field}>" for name, field in TEXT_FIELDS if name == resource.name})
        for series in resource.table.series:
            assert all(value.startswith("<") for value in series.label_values(record)), series.spec.name
        assert any(series.labels for series in resource.table.series)


def test_the_project_label_is_escaped_too() -> None:
    snapshot = _snapshot("jobs", _job(), _job(job_id=8), project=NASTY)
    targets = (Target(NASTY, "http://dli"),)
    assert ours(snapshot, targets=targets) == theirs(snapshot, targets=targets)


def test_generated_code_quotes_any_constant_text() -> None:
    """The generators' literal pieces escape what an f-string or a Python string would read
    otherwise (our names never hold these; the helper must not rely on it)."""
    from exporter.render import _label_part, _literal, _series_fstring

    tricky = "a\\b'c\nd{e}"
    assert eval("f'" + _literal(tricky) + "'") == tricky  # noqa: S307  (a literal of our own)
    assert _label_part([], "underscores") == ""
    assert _label_part([("b", "y"), ("a", "x")], "underscores") == '{{a="{x}",b="{y}"}}'
    assert _label_part([("job_id", "x")], "dots") == '{{job__id="{x}"}}'
    line = _series_fstring("m_x", [("b", "v1"), ("a", "v0")], "{v2}", "underscores")
    assert eval(line, {"v0": "0", "v1": "1", "v2": "2.0"}) == 'm_x{a="0",b="1"} 2.0\n'  # noqa: S307
