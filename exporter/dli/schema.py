"""The DLI and IAM APIs as they are spelled upstream: the only module that knows their names.

Paths, query parameters, headers, JSON fields, error codes, the IAM login body and the parsers
that turn answers into :mod:`exporter.domain` values all live here, so a renamed field is one
edit.

Real answers drift from the documentation: fields go missing or null, numbers arrive as strings,
booleans as "true". All of that is taken as meant. What cannot be taken (a job without a
``job_id``, a word where a number belongs, an object for a name, no job list, ``is_success``
false) raises :class:`PayloadError`, which names the field but never echoes its value: the
project is then reported down rather than exported with partial or guessed numbers. Nothing else
is ever raised, whatever the payload (a property test holds this).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from ..domain import UNKNOWN_STATUS, Job, JobConfig, Page, View

T = TypeVar("T")

PAGE_LIMIT = 100  # the API's maximum page size
# Label values (name, status, job_type, queue, run_mode, user_name) longer than this are cut to
# it, ending in "…": the API documents 57 characters for a name and 128 for a queue, so no real
# value is touched, and a hostile answer cannot grow the exposition without bound.
MAX_LABEL_CHARS = 256
JOB_TYPES = ("flink_sql_job", "flink_opensource_sql_job", "flink_sql_edge_job", "flink_jar_job")
# The list API's filters, as the SDK spells them; the settings of the same names pass them through.
FILTERS = ("job_type", "queue_name", "tags", "user_name", "name", "status")

# Headers. Every header a request carries is signed, so these are the only ones sent.
PROJECT_HEADER = "X-Project-Id"
REQUEST_ID_HEADER = "X-Request-Id"
SDK_DATE_HEADER = "X-Sdk-Date"
SECURITY_TOKEN_HEADER = "X-Security-Token"  # noqa: S105  (a header name, not a secret)
AUTH_TOKEN_HEADER = "X-Auth-Token"  # noqa: S105
IAM_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105
RETRY_AFTER_HEADER = "Retry-After"

# Error codes that mean "try again": DLI reports its own internal errors (DLI.0999) with HTTP 400.
RETRYABLE_CODES = frozenset({"DLI.0999"})
# Error codes that refuse the credential although the status is not 401/403: a token DLI cannot
# parse is DLI.0015 with HTTP 400.
AUTH_CODES = frozenset({"DLI.0015"})


class PayloadError(ValueError):
    """The answer is not a usable job list. ``code`` is the API's error code when it gave one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the API's integers are Java longs


def to_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a numeric string within int64; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                real = float(text)
            except ValueError:
                return None
            if not (math.isfinite(real) and real.is_integer()):
                return None
            number = int(real)
    else:
        return None
    return number if INT64_MIN <= number <= INT64_MAX else None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """A string of the API as a label value: unchanged, unless it holds what UTF-8 cannot carry."""
    if value.isascii():  # constant time in CPython: the common case costs next to nothing
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON may escape a lone surrogate (\ud800), which json.loads keeps; no exposition
        # could be encoded with it. Each one becomes U+FFFD, as a lenient UTF-8 decoder would.
        return _SURROGATE.sub("\ufffd", value)
    return value


def to_str(value: Any) -> str:
    """The API's string (made encodable); null, missing or a non-scalar becomes the empty string."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def _kind(value: Any) -> str:
    """What a JSON value is, for error messages: never the value itself (it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# Strict converters for the slow path. Missing, null and "" mean "not given", and values a sloppy
# gateway sends in another JSON type with the same meaning ("3", "true", 7 for "7") are taken.
# Anything else (a word where a number belongs, an object for a name) means the answer is not
# what the API documents: the page raises PayloadError rather than export a guess.

def _strict(raw: dict[str, Any], key: str, where: str, convert: Callable[[Any], T | None], what: str) -> T | None:
    """``raw[key]`` converted; None when not given; PayloadError when it cannot be converted."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    converted = convert(value)
    if converted is None:
        raise PayloadError(f"{where}.{key} is {_kind(value)} that is not {what}")
    return converted


def _int_field(raw: dict[str, Any], key: str, where: str) -> int | None:
    return _strict(raw, key, where, to_int, "a 64-bit integer")


def _bool_field(raw: dict[str, Any], key: str, where: str) -> bool | None:
    return _strict(raw, key, where, to_bool, "a boolean")


def _str_field(raw: dict[str, Any], key: str, where: str) -> str:
    """A string that becomes a label value: at most MAX_LABEL_CHARS characters."""
    value = raw.get(key)
    if isinstance(value, dict | list):
        raise PayloadError(f"{where}.{key} is {_kind(value)}, not a string")
    text = to_str(value)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "\u2026"


def parse_job_config(raw: Any, where: str = "job_config") -> JobConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} is {_kind(raw)}, not an object")
    get = raw.get
    if get("resource_config_version") == "v2":
        # v2 resources: the job's parallelism lives in resource_config, beside the JobManager and
        # TaskManager specs; a top-level parallel_number, if any, is the v1 setting left behind.
        resources = get("resource_config")
        if not isinstance(resources, dict):
            raise PayloadError(f"{where}.resource_config is {_kind(resources)}, not an object")
        parallel = _int_field(resources, "parallel_number", where + ".resource_config")
    else:
        parallel = get("parallel_number")
        if not ((type(parallel) is int and INT64_MIN <= parallel <= INT64_MAX) or parallel is None):
            parallel = _int_field(raw, "parallel_number", where)
    cu, checkpoint, restart = get("cu_number"), get("checkpoint_enabled"), get("restart_when_exception")
    # The fast path, as for jobs: every field of its documented type (or absent). An absent
    # boolean stays None (no series), never a confident 0.
    if (((type(cu) is int and INT64_MIN <= cu <= INT64_MAX) or cu is None)
            and (type(checkpoint) is bool or checkpoint is None) and (type(restart) is bool or restart is None)):
        return JobConfig(cu, parallel, checkpoint, restart)
    return JobConfig(
        compute_units=_int_field(raw, "cu_number", where),
        parallelism=parallel,
        checkpoints=_bool_field(raw, "checkpoint_enabled", where),
        auto_restart=_bool_field(raw, "restart_when_exception", where),
    )


def parse_job(raw: Any, where: str = "job") -> Job:
    """One job of the list. Raises PayloadError when it has no ``job_id`` or a field of a wrong type."""
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} is {_kind(raw)}, not an object")
    get = raw.get
    name, job_type, status = get("name"), get("job_type"), get("status")
    queue, run_mode, user = get("queue_name"), get("run_mode"), get("user_name")
    job_id, created, start = get("job_id"), get("create_time"), get("start_time")
    duration, restarts, savepoint = get("duration"), get("restart_times"), get("has_savepoint")
    config = get("job_config")
    # The fast path: every field of its documented type (or absent) and every label short enough,
    # the common case once per job per sweep. Anything else goes through the strict converters, which may raise.
    # Written out rather than looped: this test runs for every job of every sweep.
    if not (
        type(job_id) is int and INT64_MIN <= job_id <= INT64_MAX
        and ((type(created) is int and INT64_MIN <= created <= INT64_MAX) or created is None)
        and ((type(start) is int and INT64_MIN <= start <= INT64_MAX) or start is None)
        and ((type(duration) is int and INT64_MIN <= duration <= INT64_MAX) or duration is None)
        and ((type(restarts) is int and INT64_MIN <= restarts <= INT64_MAX) or restarts is None)
        and ((type(name) is str and len(name) <= MAX_LABEL_CHARS) or name is None)
        and ((type(job_type) is str and len(job_type) <= MAX_LABEL_CHARS) or job_type is None)
        and ((type(status) is str and len(status) <= MAX_LABEL_CHARS) or status is None)
        and ((type(queue) is str and len(queue) <= MAX_LABEL_CHARS) or queue is None)
        and ((type(run_mode) is str and len(run_mode) <= MAX_LABEL_CHARS) or run_mode is None)
        and ((type(user) is str and len(user) <= MAX_LABEL_CHARS) or user is None)
        and (type(savepoint) is bool or savepoint is None)
    ):
        return _parse_job_slowly(raw, where)
    # Positional, in Job's field order (keywords cost more, once per job per sweep). Strings inline,
    # not through _text(): no call at all for the usual ASCII (isascii() is constant time).
    return Job(
        job_id,
        (name if name.isascii() else _text(name)) if name else "",
        (job_type if job_type.isascii() else _text(job_type)) if job_type else "",
        (status if status.isascii() else _text(status)) if status else UNKNOWN_STATUS,
        (queue if queue.isascii() else _text(queue)) if queue else "",
        (run_mode if run_mode.isascii() else _text(run_mode)) if run_mode else "",
        (user if user.isascii() else _text(user)) if user else "",
        created,
        start or None,  # 0 means "not started"
        duration,
        restarts,
        savepoint,
        parse_job_config(config, where + ".job_config") if config is not None else None,
    )


def _parse_job_slowly(raw: dict[str, Any], where: str) -> Job:
    job_id = _int_field(raw, "job_id", where)
    if job_id is None:
        raise PayloadError(f"{where} has no job_id")
    return Job(
        job_id=job_id,
        name=_str_field(raw, "name", where),
        job_type=_str_field(raw, "job_type", where),
        status=_str_field(raw, "status", where) or UNKNOWN_STATUS,
        queue=_str_field(raw, "queue_name", where),
        run_mode=_str_field(raw, "run_mode", where),
        user_name=_str_field(raw, "user_name", where),
        create_time_ms=_int_field(raw, "create_time", where),
        start_time_ms=_int_field(raw, "start_time", where) or None,
        duration_ms=_int_field(raw, "duration", where),
        restarts=_int_field(raw, "restart_times", where),
        savepoint=_bool_field(raw, "has_savepoint", where),
        config=parse_job_config(raw.get("job_config"), where + ".job_config"),
    )


def parse_page(payload: Any) -> Page:
    """A decoded list-jobs answer to a Page. Raises PayloadError when it is not a job list, or
    when any job in it cannot be read: a project is exported whole or not at all."""
    if not isinstance(payload, dict):
        raise PayloadError("the answer is not a JSON object")
    if to_bool(payload.get("is_success")) is False:
        code, message = error_fields(payload)
        raise PayloadError(message or "is_success is false", code)
    job_list = payload.get("job_list")
    if not isinstance(job_list, dict):
        raise PayloadError("the answer has no job_list")
    raw_jobs = job_list.get("jobs")
    if raw_jobs is None:
        raw_jobs = []
    if not isinstance(raw_jobs, list):
        raise PayloadError("job_list.jobs is not a list")
    try:
        jobs = [parse_job(raw) for raw in raw_jobs]
    except PayloadError:
        # Name the job at fault by its place in the page; only then is the place worth formatting.
        for i, raw in enumerate(raw_jobs):
            parse_job(raw, f"job_list.jobs[{i}]")
        raise
    total = _int_field(job_list, "total_count", "job_list")
    if total is not None and total < 0:
        raise PayloadError("job_list.total_count is negative")
    return Page(total_count=total, jobs=jobs, raw_count=len(raw_jobs))


def error_fields(payload: Any) -> tuple[str, str]:
    """(error_code, error_msg) from a DLI or API-gateway error body, whatever its spelling."""
    if not isinstance(payload, dict):
        return "", ""
    code = to_str(payload.get("error_code") or payload.get("code"))
    message = to_str(payload.get("error_msg") or payload.get("message") or payload.get("msg"))
    # IAM nests its errors: {"error": {"code": 401, "message": "..."}}
    nested = payload.get("error")
    if not code and isinstance(nested, dict):
        code = to_str(nested.get("code"))
        message = message or to_str(nested.get("message"))
    return code, message


def error_request_id(payload: Any) -> str:
    """The request id an API-gateway error body carries, for when the X-Request-Id header is missing."""
    if not isinstance(payload, dict):
        return ""
    return to_str(payload.get("request_id") or payload.get("requestId"))


def list_query(offset: int, filters: Mapping[str, str], view: View) -> list[tuple[str, str]]:
    """The list API's query parameters in the SDK's spelling. Oldest first, so that jobs created
    during a sweep land on the last page instead of shifting every page. ``filters`` are keyed by
    the names in :data:`FILTERS`."""
    params = [("limit", str(PAGE_LIMIT)), ("offset", str(offset)), ("order", "asc")]
    if view is View.DETAIL:
        params.append(("show_detail", "true"))
    params.extend(sorted(filters.items()))
    return params


def list_url(base: str, project_id: str, params: Sequence[tuple[str, str]]) -> str:
    """The list API's URL. The query is built here already in the signer's canonical order and
    encoding, so the server sees exactly the string that was signed."""
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params))
    return f"{base}/v1.0/{quote(project_id, safe='')}/streaming/jobs?{query}"


# The regions of the official SDK's table (huaweicloudsdkdli/v1/region/dli_region.py, 3.1.x), and
# the one whose cloud has its own domain: DLI and IAM of eu-west-101 are on .myhuaweicloud.eu.
REGIONS = (
    "af-north-1", "af-south-1", "ae-ad-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
    "cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9",
    "cn-south-1", "cn-southwest-2", "eu-west-0", "eu-west-101", "la-north-2", "la-south-2", "me-east-1",
    "my-kualalumpur-1", "na-mexico-1", "ru-moscow-1", "ru-northwest-2", "sa-brazil-1", "tr-west-1",
)
_DOMAINS = {"eu-west-101": "myhuaweicloud.eu"}
_DEFAULT_DOMAIN = "myhuaweicloud.com"


def api_endpoint(region: str) -> str:
    """DLI's endpoint in ``region`` (one of :data:`REGIONS`)."""
    return f"https://dli.{region}.{_DOMAINS.get(region, _DEFAULT_DOMAIN)}"


def iam_endpoint(region: str) -> str:
    """IAM's endpoint in ``region``: in the same cloud (domain) as DLI's."""
    return f"https://iam.{region}.{_DOMAINS.get(region, _DEFAULT_DOMAIN)}"


def token_url(iam_base: str) -> str:
    return iam_base + "/v3/auth/tokens"


def iam_password_request(username: str, password: str, domain: str, project_id: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "password": password, "domain": {"name": domain}}},
            },
            "scope": {"project": {"id": project_id}},
        }
    }


def iam_token_expiry(payload: Any) -> str | None:
    """``token.expires_at`` (ISO 8601) from an IAM login answer."""
    if isinstance(payload, dict) and isinstance(payload.get("token"), dict):
        value = payload["token"].get("expires_at")
        return value if isinstance(value, str) else None
    return None
