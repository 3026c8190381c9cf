"""Tolerant parsing of DLI and IAM payloads: the only module that knows upstream field names.

Real answers drift from the documentation: fields go missing or null, numbers arrive as strings,
booleans as "true". Parsing never raises on a job's fields; a job without a usable ``job_id`` is
skipped, since nothing can be said about it (``Page.skipped`` says how many). Only a payload whose *shape* is wrong
(no job list, ``is_success`` false) raises :class:`PayloadError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PAGE_LIMIT = 100  # the API's maximum page size
UNKNOWN_STATUS = "unknown"


class PayloadError(ValueError):
    """The answer is not a usable job list. ``code`` is the API's error code when it gave one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


# Not frozen: a frozen dataclass costs three times as much to build here (every field goes through
# object.__setattr__), and jobs are built once per job per sweep. Nothing mutates them.
@dataclass(slots=True)
class JobConfig:
    cu_number: int | None
    parallel_number: int | None
    checkpoint_enabled: bool
    restart_when_exception: bool


@dataclass(slots=True)
class Job:
    job_id: int
    name: str
    job_type: str
    status: str
    queue: str
    run_mode: str
    user_name: str
    create_time_ms: int | None
    start_time_ms: int | None
    duration_ms: int | None
    restart_times: int | None
    has_savepoint: bool
    config: JobConfig | None


@dataclass(slots=True)
class Page:
    total_count: int | None
    jobs: list[Job]
    raw_count: int  # entries in the answer, parsed or not: a full page means more may follow
    skipped: int  # entries dropped for want of a job_id


def to_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a numeric string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None


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


def to_str(value: Any) -> str:
    """The API's string unchanged; null, missing or a non-scalar becomes the empty string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def parse_job_config(raw: Any) -> JobConfig | None:
    if not isinstance(raw, dict):
        return None
    return JobConfig(
        cu_number=to_int(raw.get("cu_number")),
        parallel_number=to_int(raw.get("parallel_number")),
        checkpoint_enabled=to_bool(raw.get("checkpoint_enabled")) is True,
        restart_when_exception=to_bool(raw.get("restart_when_exception")) is True,
    )


def parse_job(raw: Any) -> Job | None:
    """One job of the list, or None when it has no usable ``job_id``."""
    if not isinstance(raw, dict):
        return None
    job_id = to_int(raw.get("job_id"))
    if job_id is None:
        return None
    # Inline fast paths for values of the documented type, the common case once per job per
    # sweep; anything else goes through the tolerant converters.
    get = raw.get
    name, job_type, status = get("name"), get("job_type"), get("status")
    queue, run_mode, user = get("queue_name"), get("run_mode"), get("user_name")
    created, start, duration, restarts = get("create_time"), get("start_time"), get("duration"), get("restart_times")
    savepoint = get("has_savepoint")
    if type(start) is not int:
        start = to_int(start)
    config = get("job_config")
    return Job(
        job_id=job_id,
        name=name if type(name) is str else to_str(name),
        job_type=job_type if type(job_type) is str else to_str(job_type),
        status=(status if type(status) is str else to_str(status)) or UNKNOWN_STATUS,
        queue=queue if type(queue) is str else to_str(queue),
        run_mode=run_mode if type(run_mode) is str else to_str(run_mode),
        user_name=user if type(user) is str else to_str(user),
        create_time_ms=created if type(created) is int else to_int(created),
        start_time_ms=start if start else None,  # 0 means "not started"
        duration_ms=duration if type(duration) is int else to_int(duration),
        restart_times=restarts if type(restarts) is int else to_int(restarts),
        has_savepoint=savepoint is True or (savepoint is not False and to_bool(savepoint) is True),
        config=parse_job_config(config) if config is not None else None,
    )


def parse_page(payload: Any) -> Page:
    """A decoded list-jobs answer to a Page. Raises PayloadError when it is not a job list."""
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
    jobs = []
    for raw in raw_jobs:
        job = parse_job(raw)
        if job is not None:
            jobs.append(job)
    total = to_int(job_list.get("total_count"))
    return Page(total_count=total if total is not None and total >= 0 else None, jobs=jobs,
                raw_count=len(raw_jobs), skipped=len(raw_jobs) - len(jobs))


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


def list_query(offset: int, filters: dict[str, str], show_detail: bool) -> list[tuple[str, str]]:
    """The list API's query parameters in the SDK's spelling. Oldest first, so that jobs created
    during a sweep land on the last page instead of shifting every page."""
    params = [("limit", str(PAGE_LIMIT)), ("offset", str(offset)), ("order", "asc")]
    if show_detail:
        params.append(("show_detail", "true"))
    params.extend(sorted(filters.items()))
    return params


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


IAM_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105  (a header name, not a secret)


def iam_token_expiry(payload: Any) -> str | None:
    """``token.expires_at`` (ISO 8601) from an IAM login answer."""
    if isinstance(payload, dict) and isinstance(payload.get("token"), dict):
        value = payload["token"].get("expires_at")
        return value if isinstance(value, str) else None
    return None
