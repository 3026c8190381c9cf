"""Bad input, property-based: whatever the API answers and whatever the environment holds.

* Any list-jobs answer (missing, null, wrong-typed and huge fields, any unicode in names, lone
  surrogates, numbers past int64) goes through parsing and collection without an exception
  other than PayloadError, which marks the project down. The exposition always parses with
  prometheus-client's parsers, and, served over HTTP, passes ``promtool check metrics``.
* Any values in the environment: start-up either works (exit 0) or exits 2 with one line naming
  a setting, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter import cli
from exporter.dli.schema import PayloadError
from exporter.domain import Result, Snapshot
from exporter.environment import known_env_names
from exporter.resources.jobs import TABLE as JOB_TABLE
from exporter.resources.jobs import record
from exporter.resources.jobs.record import parse_page
from exporter.selfmetrics import ApiStats
from exporter.series import Attr, Const
from exporter.simulator import Fault, Simulator
from exporter.wiring import Exporter
from tests.helpers import Series, examples, job, jobs, parse, restored_logging, running_exporter, settings_for
from tests.reference import TARGETS, ours, theirs

# --- strategies for API answers ---

LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
ANY_CHAR = st.one_of(st.characters(), LONE_SURROGATES)
ANY_TEXT = st.one_of(st.text(ANY_CHAR, max_size=40), st.just("名" * 20_000), st.just("x\n\"\\{}=,"))
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=6)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the documented type, sometimes the same meaning in another type, sometimes anything."""
    return st.one_of(good, good.map(lambda v: str(v).lower() if not isinstance(v, str) else v), st.none(), JSON)


INTS = st.integers(min_value=-1, max_value=2**45)
CONFIG = st.one_of(st.none(), JSON, st.fixed_dictionaries({}, optional={
    "cu_number": _field(INTS), "real_cu_number": _field(INTS), "manager_cu_number": _field(INTS),
    "parallel_number": _field(INTS), "checkpoint_enabled": _field(st.booleans()),
    "restart_when_exception": _field(st.booleans()), "flink_version": _field(ANY_TEXT),
    "feature": _field(st.sampled_from(["basic", "custom"])), "resource_config_version": _field(st.just("v2")),
    "resource_config": st.one_of(JSON, st.fixed_dictionaries({}, optional={"parallel_number": _field(INTS)}))}))
JOB = st.one_of(
    st.fixed_dictionaries({"job_id": _field(st.integers(min_value=0, max_value=2**63 - 1))}, optional={
        "name": _field(ANY_TEXT), "status": _field(st.sampled_from(["job_running", "job_running_exception", ""])
                                                   | ANY_TEXT), "status_desc": _field(ANY_TEXT),
        "job_type": _field(ANY_TEXT), "queue_name": _field(ANY_TEXT), "run_mode": _field(ANY_TEXT),
        "user_name": _field(ANY_TEXT), "create_time": _field(INTS), "start_time": _field(INTS),
        "duration": _field(INTS), "restart_times": _field(INTS), "has_savepoint": _field(st.booleans()),
        "job_config": CONFIG, "desc": JSON, "sql_body": ANY_TEXT,
    }),
    JSON,
)
ANSWER = st.one_of(
    st.fixed_dictionaries({
        "is_success": st.sampled_from(["true", True, "false", False, None, "yes", 1]),
        "job_list": st.one_of(st.fixed_dictionaries({"jobs": st.lists(JOB, max_size=6)},
                                                    optional={"total_count": _field(st.integers(0, 6))}), JSON),
    }, optional={"message": ANY_TEXT, "error_code": ANY_TEXT}),
    JSON,
)


def result_of(answer: Any) -> Result:
    """What the client makes of one answer: the jobs, or the project down with the reason."""
    try:
        page = parse_page(answer)
    except PayloadError as exc:
        return Result(None, str(exc), 0.1, 1.0)
    return Result(list({job.job_id: job for job in page.records}.values()), None, 0.1, 1.0)


def complete(answer: Any) -> bool:
    """What the client concludes over HTTP: a readable page that holds as many entries as its
    total_count promised (one short page of at most 6 jobs: no further pages are asked for)."""
    try:
        page = parse_page(answer)
    except PayloadError:
        return False
    return page.total_count is None or page.raw_count >= page.total_count


@settings(max_examples=examples(400), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ANSWER, st.booleans())
def test_any_answer_is_collected_and_rendered_into_a_parsable_exposition(answer: Any, show_detail: bool) -> None:
    result = result_of(answer)
    key = ("p1", "jobs")
    snapshot = Snapshot({key: result}, {key: 1.0} if result.ok else {})
    for accept, parse_with in (("", parse_text), ("application/openmetrics-text", parse_openmetrics)):
        output = ours(snapshot, accept, targets=TARGETS[:1], show_detail=show_detail, stats=ApiStats())
        assert output == theirs(snapshot, accept, targets=TARGETS[:1], show_detail=show_detail, stats=ApiStats())
        parsed = {f.name: f for f in parse_with(output.decode("utf-8"))}  # strict: must be valid UTF-8
        up = [s.value for s in parsed["dli_up"].samples]
        assert up == [1.0 if result.ok else 0.0]
        job_samples = [s for name, f in parsed.items() if name.startswith("dli_job") for s in f.samples]
        if result.ok:
            assert len(parsed["dli_job_info"].samples) == len(result.records or [])
        else:
            assert job_samples == []


# --- one odd field loses only that field ---

# What each replaceable field of a well-formed job feeds: the Job attributes it is read into.
_TOP = {f.key: {f.attr} for f in record.FIELDS[1:]}
_CONFIG_ATTRS = {f.attr for f in (*record.CONFIG_FIELDS, record.REAL_CU, record.FEATURE)}
_IN_CONFIG = {f.key: {f.attr} for f in (*record.CONFIG_FIELDS, record.REAL_CU, record.FEATURE)} | {
    record.V2_KEY: {record.PARALLELISM.attr}, record.V2_RESOURCES: {record.PARALLELISM.attr}}
PATHS = [(key,) for key in _TOP] + [(record.CONFIG,)] + [(record.CONFIG, key) for key in _IN_CONFIG] + [
    (record.CONFIG, record.V2_RESOURCES, record.PARALLELISM.key)]


def _attrs(path: tuple[str, ...]) -> set[str]:
    if path[0] != record.CONFIG:
        return _TOP[path[0]]
    return _CONFIG_ATTRS if len(path) == 1 else _IN_CONFIG[path[1]]


def _families(attrs: set[str]) -> set[str]:
    """The per-job families whose value or labels come from these attributes."""
    return {s.spec.name for s in JOB_TABLE.series
            if (isinstance(s.value, Attr) and s.value.name in attrs)
            or (isinstance(s.value, Const) and s.value.when in attrs) or attrs & set(s.labels)}


def _well_formed(job_id: int, v2: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"cu_number": 4, "real_cu_number": 3, "manager_cu_number": 1, "parallel_number": 2,
                              "checkpoint_enabled": True, "restart_when_exception": False, "flink_version": "1.15"}
    if v2:
        config |= {"resource_config_version": "v2", "resource_config": {"parallel_number": 6}}
    return job(job_id, restart_times=job_id % 3, has_savepoint=True, status_desc=f"reason {job_id}",
               job_config=config)


def _replaced(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(raw))
    inner = copy
    for key in path[:-1]:
        inner = inner.setdefault(key, {})
    inner[path[-1]] = value
    return copy


def _of_job(series: Series, job_id: int) -> Series:
    return {k: v for k, v in series.items() if ("job_id", str(job_id)) in k[1]}


def _exposed(jobs_raw: list[dict[str, Any]]) -> tuple[Series, list[Any]]:
    page = parse_page({"is_success": True, "job_list": {"total_count": len(jobs_raw), "jobs": jobs_raw}})
    key = ("p1", "jobs")
    snapshot = Snapshot({key: Result(page.records, None, 0.1, 1.0)}, {key: 1.0})
    return parse(ours(snapshot, targets=TARGETS[:1], show_detail=True, stats=ApiStats()).decode()), page.field_errors


@settings(max_examples=examples(300), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(1, 4), st.data(), st.sampled_from(PATHS), JSON, st.booleans())
@example(1, None, ("job_config", "resource_config"), None, True)  # a v2 job without its resources
@example(1, None, ("status",), {"x": 1}, False)  # no readable status: "unknown", as for a missing one
def test_one_odd_field_of_one_job_loses_that_field_alone(count: int, data: Any, path: tuple[str, ...], value: Any,
                                                         v2: bool) -> None:
    """Replace any one optional field (top-level or in job_config) of any job of a well-formed
    page with any JSON value: the page is still read (dli_up stays 1), every job is still there,
    every other job's series are unchanged, and the odd job's series change only in the families
    fed by that field."""
    chosen = data.draw(st.integers(0, count - 1)) if data is not None else 0
    clean = [_well_formed(i + 1, v2) for i in range(count)]
    odd = [_replaced(raw, path, value) if place == chosen else raw for place, raw in enumerate(clean)]
    before, _ = _exposed(clean)
    after, errors = _exposed(odd)
    assert after[("dli_up", frozenset({("project_id", "p1")}))] == 1
    assert len([k for k in after if k[0] == "dli_job_info"]) == count
    odd_id = chosen + 1
    for other in range(1, count + 1):
        if other != odd_id:
            assert _of_job(after, other) == _of_job(before, other)
    fed = _families(_attrs(path))
    assert {k: v for k, v in _of_job(after, odd_id).items() if k[0] not in fed} == \
        {k: v for k, v in _of_job(before, odd_id).items() if k[0] not in fed}
    # What was left out is said, of that job alone: the field by its name, or, inside job_config
    # (where a version key says where the parallelism lives), a field of job_config.
    named = ".".join(("job", *path))
    within = named if path[0] != record.CONFIG else f"job.{record.CONFIG}"
    assert all(e.record == str(odd_id) and (e.field == within or e.field.startswith(within + "."))
               for e in errors), errors


# --- the same over HTTP, with promtool ---

@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Simulator, Exporter]]:
    sim = Simulator({"p1": jobs(1), "p2": jobs(2, start=10)}).start()
    with running_exporter(settings_for(sim, retries=0, show_detail=True)) as exporter:
        yield sim, exporter
    sim.stop()


# The promtool fixture only finds the binary: sharing it between examples is safe.
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(answer=ANSWER)
def test_any_answer_over_http_gives_200_and_passes_promtool(
        answer: Any, served: tuple[Simulator, Exporter],
        promtool: Callable[[bytes], Any]) -> None:
    sim, exporter = served
    body = json.dumps(answer, ensure_ascii=True).encode()  # lone surrogates travel as \ud800 escapes
    sim.clear_faults()
    sim.add_fault(Fault("body", project_id="p1", body=body))
    resp = requests.get(exporter.url + "/metrics", timeout=30)
    assert resp.status_code == 200
    resp.content.decode("utf-8")  # strict
    ups = {dict(labels)["project_id"]: v for (name, labels), v in parse(resp.text).items() if name == "dli_up"}
    assert ups["p2"] == 1.0 and ups["p1"] == (1.0 if complete(answer) else 0.0)
    checked = promtool(resp.content)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the environment ---

SETTING_NAMES = sorted(known_env_names() - {"DLI_EXPORTER_LISTEN_ADDRESS"})  # tests bind loopback only
TRICKY = st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "inf", "true", "FALSE", "yes", "10", "3.5",
                          "http://127.0.0.1:1", "https://", "ftp://x", "cn-north-4", "a,b,,c", "p1", "debug",
                          "JSON", "flink_jar_job", "\u00e9t\u00e9", "x" * 5000, "$(rm -rf /)", "%s%n"])
# What an environment can hold: any text but NUL, where bytes that are not UTF-8 arrive as
# surrogate escapes (\udc80-\udcff), as os.environ decodes them.
ENV_CHARS = st.one_of(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                      st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"]))
ENV_TEXT = st.one_of(TRICKY, st.text(ENV_CHARS, max_size=30))
VALID = {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK", "DLI_EXPORTER_REGION": "cn-north-4",
         "DLI_EXPORTER_PROJECT_IDS": "p1"}


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with restored_logging():
            yield


def _serve_once(self: Exporter) -> None:
    """serve_forever that returns at once: start-up is what is under test, not serving."""
    self.server._BaseServer__shutdown_request = True  # type: ignore[attr-defined]
    self.server.serve_forever()


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.dictionaries(st.sampled_from(SETTING_NAMES), ENV_TEXT, max_size=6))
@example(True, {"DLI_EXPORTER_LOG_FORMAT": "JSON"})  # found by random exploration: the log is JSON then
# Found by random exploration: an error that quoted the path with its record separator (which
# str.splitlines() splits on) printed two lines.
@example(True, {"DLI_EXPORTER_WEB_CONFIG_FILE": "0\x1e0"})
@example(True, {"DLI_EXPORTER_WEB_CONFIG_FILE": "0\r0", "DLI_EXPORTER_ENDPOINT": "", "DLI_EXPORTER_IAM_DOMAIN": ""})
# Found by make fuzz: with no project configured, its warning came before the web configuration's
# error, so a failed start-up said two lines.
@example(False, {"DLI_EXPORTER_ENDPOINT": "", "DLI_EXPORTER_IAM_DOMAIN": "", "DLI_EXPORTER_WEB_CONFIG_FILE": "0",
                 "HUAWEICLOUD_SDK_SK": "0", "HUAWEICLOUD_SDK_AK": "0"})
def test_any_environment_starts_or_exits_2_naming_the_setting(start_valid: bool, env: dict[str, str]) -> None:
    full = {**(VALID if start_valid else {}), **env}
    stderr = io.StringIO()
    with _environment(full), contextlib.redirect_stderr(stderr), \
            pytest.MonkeyPatch.context() as mp:
        mp.setattr(Exporter, "serve_forever", _serve_once)
        code = cli.main(["--listen-address", "127.0.0.1:0"])
    output = stderr.getvalue()
    assert "Traceback" not in output
    if code == 2:
        lines = output.splitlines()
        assert len(lines) == 1, output
        assert lines[0].startswith("dli-exporter: invalid setting ")
        named = lines[0].removeprefix("dli-exporter: invalid setting ").split(":")[0]
        assert named in known_env_names()
    else:
        assert code == 0, output
        assert "msg=listening" in output or '"msg": "listening"' in output
