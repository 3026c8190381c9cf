"""A Flink job, its fields as the list API spells them, and how an answer becomes jobs.

:data:`FIELDS` is the one list of a job's fields: its attribute, its upstream name, how it is
read, and whether the detail view may fill it in. The parser's fast path and the merge of the
two views (:func:`merge`) are generated from it (and from :data:`CONFIG_FIELDS`, ``job_config``'s
own), so a field is added in one line.

Real answers drift from the documentation: fields go missing or null, numbers arrive as strings,
booleans as "true". All of that is taken as meant. One field that cannot be taken (a word where
a number belongs, an object for a name, a ``v2`` configuration without ``resource_config``) is
left out of that job alone, and said as a :class:`~exporter.domain.FieldError` (its name and
what was wrong, never its value): the job's other fields, and every other job, are read as
ever. One odd job never blinds a project. Only what leaves no job to speak of fails the page
(:class:`~exporter.dli.schema.PayloadError`): no job list, an entry that is not an object, a job
without ``job_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ...dli import schema
from ...dli.schema import INT64_MAX, INT64_MIN, MAX_LABEL_CHARS, PayloadError
from ...domain import FieldError, Page

UNKNOWN_STATUS = "unknown"  # the contract's status label for a job the API gives no status for
CUSTOM_IMAGE = "custom"  # job_config.feature of a job on a user's own image (no DLI Flink version)


# Not frozen: a frozen dataclass costs three times as much to build here (every field goes through
# object.__setattr__), and jobs are built once per job per sweep. Only the view merge and the
# configuration change a job, one of its own sweep before anyone else sees it.
@dataclass(slots=True)
class Job:
    job_id: int
    name: str
    job_type: str
    status: str
    status_desc: str  # the API's reason for the status (whitespace folded); "" when none
    queue: str
    run_mode: str
    user_name: str
    create_time_ms: int | None
    start_time_ms: int | None  # None when the job never started
    duration_ms: int | None
    restarts: int | None
    savepoint: bool | None  # the job has a savepoint; None when the API does not say
    # From job_config, which only the detail view carries:
    compute_units: int | None = None  # in use: real_cu_number when above 0, else cu_number
    manager_compute_units: int | None = None  # the JobManager's
    parallelism: int | None = None
    checkpoints: bool | None = None  # automatic checkpoints enabled; None when the API does not say
    auto_restart: bool | None = None  # restarts on exceptions; None when the API does not say
    flink_version: str = ""  # DLI's Flink version; "custom" on a user's own image


INT, LABEL, BOOL, TEXT = "int", "label", "bool", "text"  # TEXT: a label of prose, whitespace folded


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
    Field("status_desc", "status_desc", TEXT, fresh=True),  # of that status: as fresh as it
    Field("queue", "queue_name", LABEL),
    Field("run_mode", "run_mode", LABEL),
    Field("user_name", "user_name", LABEL),
    Field("create_time_ms", "create_time", INT),
    Field("start_time_ms", "start_time", INT, zero_is_none=True),
    Field("duration_ms", "duration", INT, fresh=True),
    Field("restarts", "restart_times", INT),
    Field("savepoint", "has_savepoint", BOOL),
)
# job_config's fields (the detail view's), read by read_config. The CUs a job runs on are
# real_cu_number when it is above 0 ("0 means cu_number is used"); v2 jobs keep their parallelism
# in resource_config; a job on a custom image has no DLI Flink version.
CONFIG = "job_config"
CU = Field("compute_units", "cu_number", INT)
REAL_CU = Field("compute_units", "real_cu_number", INT)
MANAGER_CU = Field("manager_compute_units", "manager_cu_number", INT)
PARALLELISM = Field("parallelism", "parallel_number", INT)
CHECKPOINTS = Field("checkpoints", "checkpoint_enabled", BOOL)
AUTO_RESTART = Field("auto_restart", "restart_when_exception", BOOL)
FLINK_VERSION = Field("flink_version", "flink_version", LABEL)
FEATURE = Field("flink_version", "feature", LABEL)
CONFIG_FIELDS = (CU, MANAGER_CU, PARALLELISM, CHECKPOINTS, AUTO_RESTART, FLINK_VERSION)  # what a job gets
V2_KEY, V2, V2_RESOURCES = "resource_config_version", "v2", "resource_config"
JOB_LIST, JOBS, TOTAL_COUNT = "job_list", "jobs", "total_count"  # the answer's envelope
WHERE = "job"  # a job field's name in a FieldError: job.restart_times, job.job_config.cu_number

Errors = list[FieldError]


def describe(value: str) -> str:
    """A status description as a label value: whitespace runs folded to one space, at most
    MAX_LABEL_CHARS characters (longer ones cut, ending in "…")."""
    folded = schema.text(" ".join(value.split()))
    return folded if len(folded) <= MAX_LABEL_CHARS else folded[:MAX_LABEL_CHARS - 1] + "\u2026"


def _fits(var: str, kind: str) -> str:
    """Source of the fast path's test that ``var`` holds its documented type (or nothing): what
    :func:`_typed` tests, written out."""
    if kind == INT:
        return f"((type({var}) is int and {INT64_MIN} <= {var} <= {INT64_MAX}) or {var} is None)"
    if kind == LABEL:
        return f"((type({var}) is str and len({var}) <= {MAX_LABEL_CHARS}) or {var} is None)"
    if kind == TEXT:
        return f"(type({var}) is str or {var} is None)"
    return f"(type({var}) is bool or {var} is None)"


def _typed(value: Any, kind: str) -> bool:
    """Whether ``value`` has its field's documented type (or is absent)."""
    if value is None:
        return True
    if kind == INT:
        return type(value) is int and INT64_MIN <= value <= INT64_MAX
    if kind == LABEL:
        return type(value) is str and len(value) <= MAX_LABEL_CHARS
    if kind == TEXT:
        return type(value) is str
    return type(value) is bool


def _value(var: str, field: Field) -> str:
    """Source of a fitting value as the Job holds it."""
    if field.kind == LABEL:  # no call for the usual ASCII (isascii() is constant time)
        return f"(({var} if {var}.isascii() else text({var})) if {var} else {field.default!r})"
    if field.kind == TEXT:
        return f"(describe({var}) if {var} else '')"
    return f"({var} or None)" if field.zero_is_none else var


def _compile_parser() -> Callable[[Any, Errors], Job]:
    """``parse_job(raw, errors)``: the fast path, written out from :data:`FIELDS` (every field of
    its documented type, the common case once per job per sweep), else the tolerant slow path,
    which adds what it leaves out to ``errors``."""
    names = [f"v{i}" for i in range(len(FIELDS))]
    key = names[0]
    lines = ["def parse_job(raw, errors):",
             "    if type(raw) is not dict:",
             "        return slowly(raw, errors)",
             "    get = raw.get",
             *(f"    {var} = get({f.key!r})" for var, f in zip(names, FIELDS, strict=True)),
             f"    if not (type({key}) is int and {INT64_MIN} <= {key} <= {INT64_MAX}",
             *(f"            and {_fits(var, f.kind)}" for var, f in zip(names[1:], FIELDS[1:], strict=True)),
             "    ):",
             "        return slowly(raw, errors)",
             "    job = Job(" + ", ".join(_value(var, f) for var, f in zip(names, FIELDS, strict=True)) + ")",
             f"    config = get({CONFIG!r})",
             "    if config is not None:",
             "        read_config(job, config, errors)",
             "    return job"]
    scope: dict[str, Any] = {"Job": Job, "text": schema.text, "describe": describe, "slowly": _parse_slowly,
                             "read_config": read_config}
    exec("\n".join(lines), scope)  # noqa: S102  (generated from our own table: names and literals only)
    return cast(Callable[[Any, Errors], Job], scope["parse_job"])


def _convert(raw: Mapping[str, Any], field: Field, where: str, job_id: int, errors: Errors) -> Any:
    """A field read leniently: missing, null and "" mean "not given", and values a sloppy gateway
    sends in another JSON type with the same meaning ("3", "true", 7 for "7") are taken. Anything
    else is left out (None, or the label's default) and said in ``errors``, never guessed."""
    value = raw.get(field.key)
    if field.kind in (LABEL, TEXT):
        label = schema.to_label(value) if field.kind == LABEL else (
            describe(value) if isinstance(value, str) else schema.to_label(value))
        if label is None:
            errors.append(FieldError(f"{where}.{field.key}", f"is {schema.kind(value)}, not a string", str(job_id)))
            return field.default
        return label or field.default
    if value is None or value == "":
        return None
    converted = schema.to_int(value) if field.kind == INT else schema.to_bool(value)
    if converted is None:
        what = "a 64-bit integer" if field.kind == INT else "a boolean"
        errors.append(FieldError(f"{where}.{field.key}", f"is {schema.kind(value)} that is not {what}", str(job_id)))
        return None
    return (converted or None) if field.zero_is_none else converted


def _parse_slowly(raw: Any, errors: Errors) -> Job:
    # A job without its id is no job: the one field that fails the page. The messages go after
    # the job's place in the page (parse_page).
    if not isinstance(raw, dict):
        raise PayloadError(f" is {schema.kind(raw)}, not an object")
    given = raw.get(FIELDS[0].key)
    if given is None or given == "":
        raise PayloadError(" has no job_id")
    job_id = schema.to_int(given)
    if job_id is None:
        raise PayloadError(f".job_id is {schema.kind(given)} that is not a 64-bit integer")
    job = Job(job_id, *(_convert(raw, field, WHERE, job_id, errors) for field in FIELDS[1:]))
    config = raw.get(CONFIG)
    if config is not None:
        read_config(job, config, errors)
    return job


def read_config(job: Job, raw: Any, errors: Errors) -> None:
    """job_config's fields onto ``job`` (the detail view reads it, every few minutes: no fast path
    written out). An absent boolean stays None (no series), never a confident 0."""
    where = f"{WHERE}.{CONFIG}"
    if not isinstance(raw, dict):
        errors.append(FieldError(where, f"is {schema.kind(raw)}, not an object", str(job.job_id)))
        return

    def value(field: Field, given: Mapping[str, Any] = raw, at: str = where) -> Any:
        found = given.get(field.key)
        if not _typed(found, field.kind):
            return _convert(given, field, at, job.job_id, errors)
        if field.kind == LABEL:  # as the fast path reads a label (see _value)
            return (found if found.isascii() else schema.text(found)) if found else field.default
        return found

    real = value(REAL_CU)
    job.compute_units = real if real is not None and real > 0 else value(CU)
    job.manager_compute_units = value(MANAGER_CU)
    job.checkpoints = value(CHECKPOINTS)
    job.auto_restart = value(AUTO_RESTART)
    job.flink_version = CUSTOM_IMAGE if value(FEATURE) == CUSTOM_IMAGE else value(FLINK_VERSION)
    if raw.get(V2_KEY) != V2:
        job.parallelism = value(PARALLELISM)
        return
    # v2 resources: the job's parallelism lives in resource_config, beside the JobManager and
    # TaskManager specs; a top-level parallel_number, if any, is the v1 setting left behind.
    resources = raw.get(V2_RESOURCES)
    if isinstance(resources, dict):
        job.parallelism = value(PARALLELISM, resources, f"{where}.{V2_RESOURCES}")
    else:  # marked optional in the SDK even for v2: no parallelism, and said
        job.parallelism = None
        errors.append(FieldError(f"{where}.{V2_RESOURCES}", f"is {schema.kind(resources)}, not an object",
                                 str(job.job_id)))


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
        empty = f"not job.{field.attr}" if field.kind in (LABEL, TEXT) else f"job.{field.attr} is None"
        lines += [f"        if {empty}:", f"            job.{field.attr} = more.{field.attr}"]
    lines.append("    return unseen")
    scope: dict[str, Any] = {}
    exec("\n".join(lines), scope)  # noqa: S102  (generated from our own tables: attribute names only)
    return cast(Callable[[list[Job], Mapping[int, Job]], list[int]], scope["merge"])


_merge = _compile_merge()


def merge(summary: list[Job], detail: Mapping[int, Job]) -> tuple[list[Job], list[int]]:
    """The summary's jobs with the detail view's fields filled in, and the ids of the jobs the
    detail view has not shown. Fresh fields (status and its description, duration) are always the
    summary's, never older than its sweep; every other field is the summary's when it carries
    one, else the detail view's.

    The summary's jobs are filled in place: they are the sweep's own, parsed moments ago and not
    yet seen by anyone (building new ones would cost a third more, once per job per sweep). The
    detail view's jobs are never changed: later sweeps merge them again."""
    return summary, _merge(summary, detail)


def parse_page(payload: Any) -> Page:
    """A decoded list-jobs answer to a Page of jobs, with the fields it left out. Raises
    PayloadError when it is not a job list, or holds an entry that is no job (not an object, or
    without a job_id)."""
    payload = schema.check_success(payload)
    job_list = payload.get(JOB_LIST)
    if not isinstance(job_list, dict):
        raise PayloadError(f"the answer has no {JOB_LIST}")
    raw_jobs = job_list.get(JOBS)
    if raw_jobs is None:
        raw_jobs = []
    if not isinstance(raw_jobs, list):
        raise PayloadError(f"{JOB_LIST}.{JOBS} is not a list")
    # The count is what completeness is judged by: one that cannot be read fails the page.
    given = job_list.get(TOTAL_COUNT)
    total = None if given is None or given == "" else schema.to_int(given)
    if total is None and not (given is None or given == ""):
        raise PayloadError(f"{JOB_LIST}.{TOTAL_COUNT} is {schema.kind(given)} that is not a 64-bit integer")
    if total is not None and total < 0:
        raise PayloadError(f"{JOB_LIST}.{TOTAL_COUNT} is negative")
    jobs, errors = schema.read_entries(raw_jobs, f"{JOB_LIST}.{JOBS}", parse_job)
    return Page(total, jobs, len(raw_jobs), errors)
