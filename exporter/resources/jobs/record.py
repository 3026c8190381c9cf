"""A Flink job, its fields as the list API spells them, and how an answer becomes jobs.

:data:`FIELDS` is the one list of a job's fields: its attribute, its upstream name, how it is
read, and whether the detail view may fill it in. The parser's fast path and the merge of the
two views (:func:`merge`) are generated from it, so a field is added in one line.

Real answers drift from the documentation: fields go missing or null, numbers arrive as strings,
booleans as "true". All of that is taken as meant. What cannot be taken (a job without a
``job_id``, a word where a number belongs, an object for a name) raises
:class:`~exporter.dli.schema.PayloadError`, which names the field but never echoes its value:
the project is then reported down rather than exported with partial or guessed numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ...dli import schema
from ...dli.schema import INT64_MAX, INT64_MIN, MAX_LABEL_CHARS, PayloadError
from ...domain import Page

UNKNOWN_STATUS = "unknown"  # the contract's status label for a job the API gives no status for


# Not frozen: a frozen dataclass costs three times as much to build here (every field goes through
# object.__setattr__), and jobs are built once per job per sweep. Only the view merge and the
# configuration change a job, one of its own sweep before anyone else sees it.
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
    start_time_ms: int | None  # None when the job never started
    duration_ms: int | None
    restarts: int | None
    savepoint: bool | None  # the job has a savepoint; None when the API does not say
    # From job_config, which only the detail view carries:
    compute_units: int | None = None
    parallelism: int | None = None
    checkpoints: bool | None = None  # automatic checkpoints enabled; None when the API does not say
    auto_restart: bool | None = None  # restarts on exceptions; None when the API does not say


INT, LABEL, BOOL = "int", "label", "bool"


@dataclass(frozen=True)
class Field:
    """A job field: its :class:`Job` attribute, its name upstream, and how it is read. ``fresh``
    fields change every minute and are never taken from the older detail view; ``default`` is
    the label of a missing one; ``zero_is_none``: 0 means "not given" (a start time)."""

    attr: str
    key: str
    kind: str
    fresh: bool = False
    default: str = ""
    zero_is_none: bool = False


# In Job's field order: jobs are built positionally (keywords cost more, once per job per sweep).
FIELDS = (
    Field("job_id", "job_id", INT),
    Field("name", "name", LABEL),
    Field("job_type", "job_type", LABEL),
    Field("status", "status", LABEL, fresh=True, default=UNKNOWN_STATUS),
    Field("queue", "queue_name", LABEL),
    Field("run_mode", "run_mode", LABEL),
    Field("user_name", "user_name", LABEL),
    Field("create_time_ms", "create_time", INT),
    Field("start_time_ms", "start_time", INT, zero_is_none=True),
    Field("duration_ms", "duration", INT, fresh=True),
    Field("restarts", "restart_times", INT),
    Field("savepoint", "has_savepoint", BOOL),
)
# job_config's fields (the detail view's), read by read_config; v2 jobs keep their parallelism in
# resource_config.
CONFIG = "job_config"
CONFIG_FIELDS = (
    Field("compute_units", "cu_number", INT),
    Field("parallelism", "parallel_number", INT),
    Field("checkpoints", "checkpoint_enabled", BOOL),
    Field("auto_restart", "restart_when_exception", BOOL),
)
V2_KEY, V2, V2_RESOURCES = "resource_config_version", "v2", "resource_config"
JOB_LIST, JOBS, TOTAL_COUNT = "job_list", "jobs", "total_count"  # the answer's envelope


def _fits(var: str, kind: str) -> str:
    """Source of the fast path's test that ``var`` holds its documented type (or nothing)."""
    if kind == INT:
        return f"((type({var}) is int and {INT64_MIN} <= {var} <= {INT64_MAX}) or {var} is None)"
    if kind == LABEL:
        return f"((type({var}) is str and len({var}) <= {MAX_LABEL_CHARS}) or {var} is None)"
    return f"(type({var}) is bool or {var} is None)"


def _value(var: str, field: Field) -> str:
    """Source of a fitting value as the Job holds it."""
    if field.kind == LABEL:  # no call for the usual ASCII (isascii() is constant time)
        return f"(({var} if {var}.isascii() else text({var})) if {var} else {field.default!r})"
    return f"({var} or None)" if field.zero_is_none else var


def _compile_parser() -> Callable[[Any, str], Job]:
    """``parse(raw, where)``: the fast path, written out from :data:`FIELDS` (every field of its
    documented type, the common case once per job per sweep), else the strict slow path."""
    names = [f"v{i}" for i in range(len(FIELDS))]
    key = names[0]
    lines = ["def parse_job(raw, where='job'):",
             "    if type(raw) is not dict:",
             "        return slowly(raw, where)",
             "    get = raw.get",
             *(f"    {var} = get({f.key!r})" for var, f in zip(names, FIELDS, strict=True)),
             f"    if not (type({key}) is int and {INT64_MIN} <= {key} <= {INT64_MAX}",
             *(f"            and {_fits(var, f.kind)}" for var, f in zip(names[1:], FIELDS[1:], strict=True)),
             "    ):",
             "        return slowly(raw, where)",
             "    job = Job(" + ", ".join(_value(var, f) for var, f in zip(names, FIELDS, strict=True)) + ")",
             f"    config = get({CONFIG!r})",
             "    if config is not None:",
             f"        read_config(job, config, where + '.{CONFIG}')",
             "    return job"]
    scope: dict[str, Any] = {"Job": Job, "text": schema.text, "slowly": _parse_slowly, "read_config": read_config}
    exec("\n".join(lines), scope)  # noqa: S102  (generated from our own table: names and literals only)
    return cast(Callable[[Any, str], Job], scope["parse_job"])


def _typed(value: Any, kind: str) -> bool:
    """Whether ``value`` has its field's documented type (or is absent): the same test as the fast path's."""
    if value is None:
        return True
    if kind == INT:
        return type(value) is int and INT64_MIN <= value <= INT64_MAX
    if kind == LABEL:
        return type(value) is str and len(value) <= MAX_LABEL_CHARS
    return type(value) is bool


def _convert(raw: Mapping[str, Any], field: Field, where: str) -> Any:
    """A field read strictly: missing, null and "" mean "not given", and values a sloppy gateway
    sends in another JSON type with the same meaning ("3", "true", 7 for "7") are taken. Anything
    else means the answer is not what the API documents: PayloadError, rather than a guess."""
    value = raw.get(field.key)
    if field.kind == LABEL:
        label = schema.to_label(value)
        if label is None:
            raise PayloadError(f"{where}.{field.key} is {schema.kind(value)}, not a string")
        return label or field.default
    if value is None or value == "":
        return None
    converted = schema.to_int(value) if field.kind == INT else schema.to_bool(value)
    if converted is None:
        what = "a 64-bit integer" if field.kind == INT else "a boolean"
        raise PayloadError(f"{where}.{field.key} is {schema.kind(value)} that is not {what}")
    return (converted or None) if field.zero_is_none else converted


def _parse_slowly(raw: Any, where: str) -> Job:
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} is {schema.kind(raw)}, not an object")
    values = [_convert(raw, field, where) for field in FIELDS]
    if values[0] is None:
        raise PayloadError(f"{where} has no job_id")
    job = Job(*values)
    config = raw.get(CONFIG)
    if config is not None:
        read_config(job, config, f"{where}.{CONFIG}")
    return job


def read_config(job: Job, raw: Any, where: str) -> None:
    """job_config's fields onto ``job``. An absent boolean stays None (no series), never a
    confident 0."""
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} is {schema.kind(raw)}, not an object")
    for field in CONFIG_FIELDS:
        value = raw.get(field.key)
        if not _typed(value, field.kind):  # the strict converter only where it is needed
            value = _convert(raw, field, where)
        setattr(job, field.attr, value)
    if raw.get(V2_KEY) == V2:
        # v2 resources: the job's parallelism lives in resource_config, beside the JobManager and
        # TaskManager specs; a top-level parallel_number, if any, is the v1 setting left behind.
        resources = raw.get(V2_RESOURCES)
        if not isinstance(resources, dict):
            raise PayloadError(f"{where}.{V2_RESOURCES} is {schema.kind(resources)}, not an object")
        job.parallelism = _convert(resources, CONFIG_FIELDS[1], f"{where}.{V2_RESOURCES}")


parse_job = _compile_parser()


def _compile_merge() -> Callable[[list[Job], Mapping[int, Job]], list[int]]:
    """``merge(summary, detail)``, written out from the tables: each field that is not ``fresh``
    filled from the detail view where the summary lacks it (once per job per sweep)."""
    lines = ["def merge(summary, detail):",
             "    unseen = []",
             "    get = detail.get",
             "    for job in summary:",
             "        more = get(job.job_id)",
             "        if more is None:",
             "            unseen.append(job.job_id)",
             "            continue"]
    # The detail view's own fields first (the summary view never has them), then what either may lack.
    for field in (*CONFIG_FIELDS, *(f for f in FIELDS[1:] if not f.fresh)):
        empty = f"not job.{field.attr}" if field.kind == LABEL else f"job.{field.attr} is None"
        lines += [f"        if {empty}:", f"            job.{field.attr} = more.{field.attr}"]
    lines.append("    return unseen")
    scope: dict[str, Any] = {}
    exec("\n".join(lines), scope)  # noqa: S102  (generated from our own tables: attribute names only)
    return cast(Callable[[list[Job], Mapping[int, Job]], list[int]], scope["merge"])


_merge = _compile_merge()


def merge(summary: list[Job], detail: Mapping[int, Job]) -> tuple[list[Job], list[int]]:
    """The summary's jobs with the detail view's fields filled in, and the ids of the jobs the
    detail view has not shown. Fresh fields (status, duration) are always the summary's, never
    older than its sweep; every other field is the summary's when it carries one, else the
    detail view's.

    The summary's jobs are filled in place: they are the sweep's own, parsed moments ago and not
    yet seen by anyone (building new ones would cost a third more, once per job per sweep). The
    detail view's jobs are never changed: later sweeps merge them again."""
    return summary, _merge(summary, detail)


def parse_page(payload: Any) -> Page:
    """A decoded list-jobs answer to a Page of jobs. Raises PayloadError when it is not a job
    list, or when any job in it cannot be read: a project is exported whole or not at all."""
    payload = schema.check_success(payload)
    job_list = payload.get(JOB_LIST)
    if not isinstance(job_list, dict):
        raise PayloadError(f"the answer has no {JOB_LIST}")
    raw_jobs = job_list.get(JOBS)
    if raw_jobs is None:
        raw_jobs = []
    if not isinstance(raw_jobs, list):
        raise PayloadError(f"{JOB_LIST}.{JOBS} is not a list")
    try:
        jobs = [parse_job(raw, "job") for raw in raw_jobs]
    except PayloadError:
        # Name the job at fault by its place in the page; only then is the place worth formatting.
        for i, raw in enumerate(raw_jobs):
            parse_job(raw, f"{JOB_LIST}.{JOBS}[{i}]")
        raise
    total = _convert(job_list, Field("total_count", TOTAL_COUNT, INT), JOB_LIST)
    if total is not None and total < 0:
        raise PayloadError(f"{JOB_LIST}.{TOTAL_COUNT} is negative")
    return Page(total, jobs, len(raw_jobs))
