"""Tolerant parsing: whatever the API sends, a sweep does not break on a job's or a queue's fields."""

from __future__ import annotations

import re
from typing import Any

import pytest

from exporter.dli.schema import PayloadError, error_fields, paging, to_bool, to_float, to_int, to_str, url
from exporter.domain import FieldError
from exporter.resources import jobs as jobs_resource
from exporter.resources import queues
from exporter.resources.base import Options
from exporter.resources.jobs import record
from exporter.resources.jobs.record import parse_page
from tests.helpers import job, parsed


@pytest.mark.parametrize(("raw", "expected"), [
    (5, 5), ("17", 17), (" 42 ", 42), (3.0, 3), ("1.5e3", 1500), ("12345678901234567", 12345678901234567),
    (None, None), ("", None), ("abc", None), (True, None), ([], None), ({}, None), (float("nan"), None),
    ("inf", None), (-3, -3), (3.5, None), ("2.5", None), (2**63, None), (-(2**63), -(2**63)), ("1e400", None),
])
def test_to_int(raw: Any, expected: int | None) -> None:
    assert to_int(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (True, True), (False, False), ("true", True), ("False", False), ("TRUE", True), (1, True), (0, False),
    (None, None), ("maybe", None), (2, None), ([], None),
])
def test_to_bool(raw: Any, expected: bool | None) -> None:
    assert to_bool(raw) is expected


@pytest.mark.parametrize(("raw", "expected"), [
    (5, 5.0), ("2.5", 2.5), (" 7 ", 7.0), (1.25, 1.25), (None, None), ("", None), ("x", None), (True, None),
    (float("nan"), None), ("inf", None), (2**64, None), ([], None),
])
def test_to_float(raw: Any, expected: float | None) -> None:
    assert to_float(raw) == expected


def test_to_str_passes_strings_unchanged() -> None:
    assert to_str("  spaced, \"quoted\"\n名字 ") == "  spaced, \"quoted\"\n名字 "
    assert to_str(None) == "" and to_str({"a": 1}) == "" and to_str(7) == "7" and to_str(True) == "true"


def test_full_job() -> None:
    got = parsed(job(146, restart_times=4, has_savepoint=True, start_time=1_700_000_000_123))
    assert (got.job_id, got.name, got.status, got.queue, got.run_mode) == (
        146, "job-146", "job_running", "default", "shared_cluster")
    assert got.restarts == 4 and got.savepoint is True
    assert got.start_time_ms == 1_700_000_000_123
    assert got.compute_units == 2 and got.checkpoints


def test_the_documented_example_job() -> None:
    """The example answer of the API page: a draft job with few fields."""
    raw = {"job_id": 146, "name": "aaaaa", "desc": "", "user_name": "", "job_type": "flink_sql_job",
           "status": "job_init", "status_desc": "", "create_time": 1578892414688, "duration": 0,
           "root_id": -1, "graph_editor_enabled": False, "has_savepoint": False}
    got = parsed(raw)
    assert got.start_time_ms is None and got.restarts is None and got.duration_ms == 0
    assert got.queue == "" and got.run_mode == "" and got.compute_units is None


def test_missing_and_null_fields() -> None:
    got = parsed({"job_id": "7", "name": None, "status": None, "queue_name": None, "start_time": 0,
                        "restart_times": None, "has_savepoint": None, "job_config": None})
    assert got.job_id == 7
    assert got.name == "" and got.queue == "" and got.user_name == ""
    assert got.status == "unknown"
    assert got.start_time_ms is None and got.restarts is None and got.duration_ms is None
    # An absent boolean stays absent (no series), never a confident 0.
    assert got.create_time_ms is None and got.savepoint is None and got.compute_units is None


def test_numbers_and_booleans_as_strings() -> None:
    got = parsed({"job_id": "12", "restart_times": "3", "duration": "1500", "create_time": "1700000000000",
                        "has_savepoint": "true", "job_config": {"cu_number": "4", "parallel_number": "2",
                                                                "checkpoint_enabled": "true",
                                                                "restart_when_exception": "false"}})
    assert (got.restarts, got.duration_ms, got.create_time_ms) == (3, 1500, 1_700_000_000_000)
    assert got.savepoint is True
    assert (got.compute_units, got.parallelism) == (4, 2)
    assert got.checkpoints is True and got.auto_restart is False


def test_unknown_status_is_passed_through() -> None:
    got = parsed(job(1, status="job_quantum_superposition"))
    assert got.status == "job_quantum_superposition"


@pytest.mark.parametrize(("raw", "message"), [
    (None, " is null, not an object"), ([], " is a list, not an object"), ("job", " is a string, not an object"),
    ({"job_id": None}, " has no job_id"), ({"name": "no id"}, " has no job_id"), ({"job_id": ""}, " has no job_id"),
    ({"job_id": "abc"}, ".job_id is a string that is not a 64-bit integer"),
    ({"job_id": 2**63}, ".job_id is a number that is not a 64-bit integer"),
])
def test_only_a_job_without_an_id_is_no_job(raw: Any, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        parsed(raw)
    assert str(info.value) == message and "abc" not in str(info.value)


@pytest.mark.parametrize(("raw", "field", "problem"), [
    ({"restart_times": "several"}, "job.restart_times", "is a string that is not a 64-bit integer"),
    ({"restart_times": 1.5}, "job.restart_times", "is a number that is not a 64-bit integer"),
    ({"duration": 2**70}, "job.duration", "is a number that is not a 64-bit integer"),
    ({"has_savepoint": "perhaps"}, "job.has_savepoint", "is a string that is not a boolean"),
    ({"name": {"en": "x"}}, "job.name", "is an object, not a string"),
    ({"status": ["job_running"]}, "job.status", "is a list, not a string"),
    ({"status_desc": {"reason": "x"}}, "job.status_desc", "is an object, not a string"),
    ({"job_config": "big"}, "job.job_config", "is a string, not an object"),
    ({"job_config": {"cu_number": "lots", "real_cu_number": 0}}, "job.job_config.cu_number",
     "is a string that is not a 64-bit integer"),
    ({"job_config": {"real_cu_number": []}}, "job.job_config.real_cu_number", "is a list that is not a 64-bit integer"),
    ({"job_config": {"flink_version": {"major": 1}}}, "job.job_config.flink_version", "is an object, not a string"),
])
def test_an_odd_field_loses_only_that_field(raw: dict[str, Any], field: str, problem: str) -> None:
    """The field is left out and said (its name and what was wrong, never the value); every other
    field of the job is read as ever."""
    errors: list[FieldError] = []
    whole = job(41, restart_times=2, has_savepoint=True, status_desc="running well",
                job_config={"cu_number": 4, "real_cu_number": 3, "flink_version": "1.15", "parallel_number": 2})
    config = raw.get("job_config")
    odd = {**whole, **raw, "job_config": {**whole["job_config"], **config} if isinstance(config, dict) else
           config if "job_config" in raw else whole["job_config"]}
    got, clean = parsed(odd, errors), parsed(whole)
    assert errors == [FieldError(field, problem, "41")]
    assert "several" not in repr(errors) and "perhaps" not in repr(errors) and "lots" not in repr(errors)
    lost = {name for name in clean.__slots__ if getattr(got, name) != getattr(clean, name)}
    attr = {"job.restart_times": {"restarts"}, "job.duration": {"duration_ms"}, "job.has_savepoint": {"savepoint"},
            "job.name": {"name"}, "job.status": {"status"}, "job.status_desc": {"status_desc"},
            "job.job_config": {"compute_units", "parallelism", "flink_version"},
            "job.job_config.cu_number": {"compute_units"},  # real_cu_number 0: cu_number is the CUs in use
            "job.job_config.real_cu_number": {"compute_units"},  # falls back to cu_number
            "job.job_config.flink_version": {"flink_version"}}[field]
    assert lost == attr
    if field == "job.status":
        assert got.status == "unknown"  # the contract's label for a job without a status
    if field == "job.job_config.real_cu_number":
        assert got.compute_units == 4


def test_compute_units_are_the_real_ones_when_given() -> None:
    """real_cu_number is the CUs a job runs on; 0 (or none) means cu_number is."""
    def cus(config: dict[str, Any]) -> int | None:
        return parsed(job(1, job_config=config)).compute_units
    assert cus({"cu_number": 4, "real_cu_number": 6}) == 6
    assert cus({"cu_number": 4, "real_cu_number": 0}) == 4
    assert cus({"cu_number": 4}) == 4 and cus({"real_cu_number": "5"}) == 5 and cus({}) is None
    assert parsed(job(1, job_config={"manager_cu_number": 2})).manager_compute_units == 2


def test_flink_version_and_custom_images() -> None:
    assert parsed(job(1, job_config={"flink_version": "1.15"})).flink_version == "1.15"
    assert parsed(job(1, job_config={"flink_version": "1.12", "feature": "custom"})).flink_version == "custom"
    assert parsed(job(1, job_config={"feature": "basic"})).flink_version == ""


def test_status_descriptions_fold_whitespace_and_are_bounded() -> None:
    assert parsed(job(1, status_desc="  Failed to\n submit:\tno CUs  ")).status_desc == "Failed to submit: no CUs"
    long = parsed(job(1, status_desc="x" * 5000)).status_desc
    assert len(long) == record.MAX_LABEL_CHARS and long.endswith("\u2026")
    assert parsed(job(1, status_desc=7)).status_desc == "7"  # a number is as good as its text


def test_page() -> None:
    page = parse_page({"is_success": "true", "message": "ok",
                       "job_list": {"total_count": "3", "jobs": [job(1), job(3), job(2)]}})
    assert page.total_count == 3 and [j.job_id for j in page.records] == [1, 3, 2]
    assert page.raw_count == 3


def test_one_unreadable_job_fails_the_page_with_its_position() -> None:
    with pytest.raises(PayloadError, match=re.escape("job_list.jobs[1] has no job_id")):
        parse_page({"is_success": "true", "job_list": {"total_count": 3, "jobs": [job(1), {"name": "x"}, job(2)]}})


def test_page_with_boolean_success_and_no_jobs() -> None:
    page = parse_page({"is_success": True, "job_list": {"total_count": 0, "jobs": None}})
    assert page.total_count == 0 and page.records == [] and page.raw_count == 0


@pytest.mark.parametrize(("payload", "message"), [
    ({"is_success": "false", "message": "Internal error", "error_code": "DLI.0999"}, "Internal error"),
    ({"is_success": False}, "is_success is false"),
    ({"is_success": "true"}, "no job_list"),
    ({"is_success": "true", "job_list": {"jobs": "many"}}, "not a list"),
    ({"is_success": "true", "job_list": {"jobs": [], "total_count": "many"}}, "total_count is a string"),
    ({"is_success": "true", "job_list": {"jobs": [], "total_count": -1}}, "total_count is negative"),
    ([], "not a JSON object"),
])
def test_page_errors(payload: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_page(payload)


def test_page_error_keeps_code() -> None:
    with pytest.raises(PayloadError) as info:
        parse_page({"is_success": "false", "error_code": "DLI.0999", "error_msg": "boom"})
    assert info.value.code == "DLI.0999" and str(info.value) == "boom"


def test_error_fields_of_each_body() -> None:
    assert error_fields({"error_code": "DLI.0001", "error_msg": "bad"}) == ("DLI.0001", "bad")
    assert error_fields({"error_code": "APIG.0301", "error_msg": "auth", "request_id": "r"}) == ("APIG.0301", "auth")
    assert error_fields({"error": {"code": 401, "message": "wrong password"}}) == ("401", "wrong password")
    assert error_fields(None) == ("", "")


def test_the_job_lists_ask_for_everything_in_order() -> None:
    summary, detail = jobs_resource.RESOURCE.requests(Options(job_filters={"queue_name": "q",
                                                                           "job_type": "flink_jar_job"}))
    assert dict([*paging(200), *detail.params]) == {"limit": "100", "offset": "200", "order": "asc",
                                                   "show_detail": "true", "queue_name": "q",
                                                   "job_type": "flink_jar_job"}
    assert "show_detail" not in dict(summary.params) and summary.paged and not summary.background
    assert detail.background  # no scrape waits for a detail refresh: its pages queue behind
    [only] = jobs_resource.RESOURCE.requests(Options(show_detail=False, job_filters={"queue_name": "q"}))
    assert only.params == (("queue_name", "q"),) and not only.background
    # Built already in the signer's canonical order and encoding.
    assert url("http://h", "/v1.0/p%201/streaming/jobs", [("order", "asc"), ("limit", "100"), ("name", "a b")]) == (
        "http://h/v1.0/p%201/streaming/jobs?limit=100&name=a%20b&order=asc")


def test_documented_types_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs whose fields have their documented types are read without the strict converters, which
    cost several times as much; everything else takes them (and the slow path gives the same)."""
    def refuse(*args: Any) -> Any:
        raise AssertionError("the slow path was taken")

    typed = {**job(7), "job_id": 2**63 - 1, "create_time": -(2**63), "start_time": 0, "duration": 2**63 - 1,
             "restart_times": 0, "has_savepoint": None,
             "job_config": {"cu_number": 2**63 - 1, "parallel_number": -(2**63), "checkpoint_enabled": None,
                            "restart_when_exception": False}}
    lowest = {**typed, "job_id": -(2**63), "create_time": 2**63 - 1, "start_time": -(2**63), "duration": -(2**63),
              "restart_times": 2**63 - 1, "has_savepoint": True,
              "job_config": {"cu_number": -(2**63), "parallel_number": 2**63 - 1, "checkpoint_enabled": True}}
    bare = {"job_id": 0, "job_config": {}}  # every other field missing: None, as documented
    with monkeypatch.context() as patched:
        patched.setattr(record, "_convert", refuse)
        fast = parsed(typed)
        others = [parsed(lowest), parsed(bare)]
    assert fast == record._parse_slowly(typed, [])  # the strict path reads it the same
    assert others == [record._parse_slowly(lowest, []), record._parse_slowly(bare, [])]
    assert (fast.job_id, fast.create_time_ms, fast.start_time_ms, fast.restarts, fast.savepoint) == (
        2**63 - 1, -(2**63), None, 0, None)
    assert (fast.compute_units, fast.parallelism) == (2**63 - 1, -(2**63))
    assert (fast.checkpoints, fast.auto_restart) == (None, False)
    for sloppy in ({"job_id": "7"}, {"job_id": 7, "restart_times": "1"}, {"job_id": 7, "has_savepoint": "true"},
                   {"job_id": 7, "name": 5}, {"job_id": 7, "job_config": {"cu_number": "2"}},
                   {"job_id": 7, "job_config": {"checkpoint_enabled": 1}}, {"job_id": 7, "status_desc": 1}):
        with monkeypatch.context() as patched:
            patched.setattr(record, "_convert", refuse)
            with pytest.raises(AssertionError, match="slow path"):
                parsed(sloppy)
    with pytest.raises(PayloadError, match="job_id is a number"):  # past int64: the fast path declines it
        parsed({"job_id": 2**63})


@pytest.mark.parametrize("kind", [record.INT, record.LABEL, record.BOOL])
def test_the_fast_paths_written_out_test_is_the_typed_test(kind: str) -> None:
    """The generated fast path writes out record._typed: one rule, checked to read the same."""
    values = [None, 0, 1, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, True, False, 1.0, "", "x", "x" * 256, "x" * 257,
              [], {}]
    for value in values:
        assert eval(record._fits("v", kind), {"v": value}) == record._typed(value, kind), (kind, value)  # noqa: S307


def test_v2_jobs_take_their_parallelism_from_the_resource_config() -> None:
    v2 = parsed(job(5, job_config={"cu_number": 3, "parallel_number": 1, "resource_config_version": "v2",
                                      "resource_config": {"parallel_number": 6, "max_slot": 2,
                                                          "jobmanager_resource_spec": {"cpu": 1.0, "memory": "4G"},
                                                          "taskmanager_resource_spec": {"cpu": 2.0, "memory": "8G"}}}))
    v1 = parsed(job(6, job_config={"parallel_number": 4, "resource_config_version": "v1",
                                      "resource_config": {"parallel_number": 9}}))
    assert (v2.parallelism, v2.compute_units) == (6, 3)
    assert v1.parallelism == 4
    sloppy = parsed(job(7, job_config={"resource_config_version": "v2",
                                          "resource_config": {"parallel_number": "8"}}))
    assert sloppy.parallelism == 8
    for config, problem in (({"resource_config_version": "v2", "resource_config": []}, "is a list, not an object"),
                            ({"resource_config_version": "v2"}, "is null, not an object"),
                            ({"resource_config_version": "v2", "resource_config": {"parallel_number": "x"}},
                             "is a string that is not a 64-bit integer")):
        errors: list[FieldError] = []
        odd = parsed(job(8, job_config={**config, "cu_number": 2}), errors)
        assert odd.parallelism is None and odd.compute_units == 2  # the rest of job_config is read
        [error] = errors
        assert error.field.startswith("job.job_config.resource_config") and error.problem == problem


def test_absent_booleans_stay_absent() -> None:
    """A missing has_savepoint, checkpoint_enabled or restart_when_exception is not a confident 0."""
    bare = parsed({"job_id": 1, "job_config": {"cu_number": 2}})
    assert bare.savepoint is None and bare.compute_units == 2
    assert (bare.checkpoints, bare.auto_restart) == (None, None)
    given = parsed({"job_id": 1, "has_savepoint": False,
                       "job_config": {"checkpoint_enabled": False, "restart_when_exception": "false"}})
    assert given.savepoint is False
    assert (given.checkpoints, given.auto_restart) == (False, False)


def test_endpoints_come_from_the_sdks_region_table() -> None:
    from exporter.dli.schema import REGIONS, api_endpoint, iam_endpoint

    assert len(REGIONS) == 28 and "cn-north-4" in REGIONS
    assert api_endpoint("eu-west-101") == "https://dli.eu-west-101.myhuaweicloud.eu"
    assert iam_endpoint("eu-west-101") == "https://iam.eu-west-101.myhuaweicloud.eu"
    assert api_endpoint("ap-southeast-1") == "https://dli.ap-southeast-1.myhuaweicloud.com"
    assert iam_endpoint("af-south-1") == "https://iam.af-south-1.myhuaweicloud.com"


def test_the_region_table_is_the_official_sdks() -> None:
    from huaweicloudsdkdli.v1.region.dli_region import DliRegion

    from exporter.dli.schema import REGIONS, api_endpoint

    assert sorted(DliRegion.static_fields) == sorted(REGIONS)
    assert {r: api_endpoint(r) for r in REGIONS} == {r: DliRegion.static_fields[r].endpoints[0] for r in REGIONS}


# --- queues ---

def queue(name: str, **fields: Any) -> dict[str, Any]:
    """A queue as the list gives it (the SDK's fields, some left out)."""
    return {"queue_id": 1, "queue_name": name, "description": "", "owner": "alice", "engine": "flink",
            "used_cu": 12.5, "create_time": 1_690_000_000_000, "queue_type": "general", "cu_count": 16,
            "charging_mode": 1, "resource_mode": 1, "is_restarting": False, "cu_scale_in_limit": 16,
            "cu_scale_out_limit": 64, "elastic_resource_pool_name": "pool_1", **fields}


def test_a_queue_as_documented() -> None:
    [q] = queues.parse_page({"is_success": True, "message": "", "queues": [queue("q1")]}).records
    assert q == queues.Queue("q1", "general", "dedicated", "flink", "pool_1", 16, 16, 64, 12.5, False)


def test_a_queue_with_fields_left_out_and_loosely_typed() -> None:
    [sparse, loose, other] = queues.parse_page({"is_success": "true", "queues": [
        {"queue_name": "sql_q", "queue_type": "sql", "cu_count": 8},
        {"queue_name": "q2", "cu_count": "32", "used_cu": "3.5", "resource_mode": "0", "is_restarting": "true"},
        {"queue_name": "q3", "resource_mode": 7}]}).records
    assert (sparse.resource_mode, sparse.used_compute_units, sparse.restarting) == ("", None, None)
    assert (sparse.compute_units_min, sparse.compute_units_max, sparse.elastic_resource_pool) == (None, None, "")
    assert (loose.compute_units, loose.used_compute_units, loose.resource_mode, loose.restarting) == (
        32, 3.5, "shared", True)
    assert other.resource_mode == "7"  # a mode the documentation does not name: the API's number


@pytest.mark.parametrize(("payload", "message"), [
    ({"is_success": False, "error_code": "DLI.0002", "error_msg": "No queue."}, "No queue."),
    ({"is_success": True, "queues": "many"}, "the answer has no list of queues"),
    ({"is_success": True}, "the answer has no list of queues"),
    ({"is_success": True, "queues": [{"cu_count": 1}]}, "queues[0] has no queue_name"),
    ({"is_success": True, "queues": [queue("q"), 7]}, "queues[1] is a number, not an object"),
])
def test_queue_answers_that_cannot_be_read(payload: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        queues.parse_page(payload)


@pytest.mark.parametrize(("odd", "field", "problem", "attr"), [
    ({"cu_count": "lots"}, "queue.cu_count", "is a string, not a number", "compute_units"),
    ({"is_restarting": "maybe"}, "queue.is_restarting", "is a string, not a boolean", "restarting"),
    ({"engine": {"x": 1}}, "queue.engine", "is an object, not a string", "engine"),
    ({"used_cu": []}, "queue.used_cu", "is a list, not a number", "used_compute_units"),
])
def test_an_odd_queue_field_loses_only_that_field(odd: dict[str, Any], field: str, problem: str, attr: str) -> None:
    whole = queue("q", cu_count=16, used_cu=4, is_restarting=False, engine="spark")
    page = queues.parse_page({"is_success": True, "queues": [{**whole, **odd}, queue("other")]})
    clean = queues.parse_page({"is_success": True, "queues": [whole, queue("other")]})
    assert page.field_errors == [FieldError(field, problem, "q")] and "lots" not in repr(page.field_errors)
    assert page.records[1] == clean.records[1]
    lost = {name for name in queues.Queue.__dataclass_fields__
            if getattr(page.records[0], name) != getattr(clean.records[0], name)}
    assert lost == {attr}


def test_the_queue_list_asks_for_every_type_in_one_call() -> None:
    [request] = queues.RESOURCE.requests(Options())
    assert request.params == (("queue_type", "all"),) and not request.paged and request.path == "queues"
