"""DLI queues: ``GET /v1.0/{project_id}/queues?queue_type=all``, the capacity Flink jobs run on.

The list's default is ``queue_type=sql``, which hides exactly the ``general`` queues Flink runs
on, so every queue is asked for. No paging: one answer holds every queue. Read on its own cadence
(``DLI_EXPORTER_QUEUE_INTERVAL_SECONDS``, 300 by default): a queue's size changes rarely. A
queue's ``queue`` label is the ``queue_name`` jobs carry, so the CUs running jobs ask can be set
against the queue's in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..dli import schema
from ..dli.reader import ListRequest
from ..dli.schema import PayloadError
from ..domain import FieldError, Page, Result
from ..series import PROJECT_ID, Attr, Const, MetricSpec, RecordSeries, Table
from .base import Options, Resource, Switch, one_list

NAME = "queues"
PATH = "queues"
ALL_TYPES = ("queue_type", "all")  # the default is sql: Flink's general queues would be left out
QUEUES = "queues"  # the answer's list
RESOURCE_MODES = {0: "shared", 1: "dedicated"}
WHERE = "queue"  # a queue field's name in a FieldError: queue.cu_count


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    queue_type: str
    resource_mode: str  # shared, dedicated, or the API's number when it is another
    engine: str
    elastic_resource_pool: str
    compute_units: int | None
    compute_units_min: int | None
    compute_units_max: int | None
    used_compute_units: float | None
    restarting: bool | None


def parse_queue(raw: Any, errors: list[FieldError]) -> Queue:
    """One queue of the list; a field that cannot be read is left out (said in ``errors``), a
    queue without its name fails the answer."""
    if not isinstance(raw, dict):
        raise PayloadError(f" is {schema.kind(raw)}, not an object")
    name = schema.to_label(raw.get("queue_name"))
    if not name:
        raise PayloadError(" has no queue_name")

    def read(key: str, convert: Callable[[Any], Any], what: str) -> Any:
        value = raw.get(key)
        if value is None or value == "":
            return None
        converted = convert(value)
        if converted is None:
            errors.append(FieldError(f"{WHERE}.{key}", f"is {schema.kind(value)}, not {what}", name))
        return converted

    def label(key: str) -> str:
        return read(key, schema.to_label, "a string") or ""

    mode = read("resource_mode", schema.to_int, "a number")
    return Queue(
        name=name,
        queue_type=label("queue_type"),
        resource_mode=RESOURCE_MODES.get(mode, str(mode)) if mode is not None else "",
        engine=label("engine"),
        elastic_resource_pool=label("elastic_resource_pool_name"),
        compute_units=read("cu_count", schema.to_int, "a number"),
        compute_units_min=read("cu_scale_in_limit", schema.to_int, "a number"),
        compute_units_max=read("cu_scale_out_limit", schema.to_int, "a number"),
        used_compute_units=read("used_cu", schema.to_float, "a number"),
        restarting=read("is_restarting", schema.to_bool, "a boolean"),
    )


def parse_page(payload: Any) -> Page:
    """The queues answer (``is_success`` a bool here) as one page holding every queue, with the
    fields it left out."""
    payload = schema.check_success(payload)
    raw = payload.get(QUEUES)
    if not isinstance(raw, list):  # missing too: an answer that says nothing of queues is not "none"
        raise PayloadError(f"the answer has no list of {QUEUES}")
    queues, errors = schema.read_entries(raw, QUEUES, parse_queue)
    return Page(None, queues, len(raw), errors)


QUEUE = "queue"


def _series(name: str, help_: str, value: Attr | Const, *labels: tuple[str, str]) -> RecordSeries:
    spec = MetricSpec(name, "gauge", help_, (PROJECT_ID, QUEUE, *(label for label, _ in labels)))
    return RecordSeries(spec, value, tuple(attr for _, attr in labels))


TABLE = Table(
    key="name", key_label=QUEUE,
    series=(
        _series("dli_queue_info", "Information about a DLI queue; always 1.", Const(1), ("queue_type", "queue_type"),
                ("resource_mode", "resource_mode"), ("engine", "engine"),
                ("elastic_resource_pool", "elastic_resource_pool")),
        _series("dli_queue_compute_units", "Compute units (CUs) of the queue.", Attr("compute_units")),
        _series("dli_queue_compute_units_min", "The fewest CUs the queue scales in to.", Attr("compute_units_min")),
        _series("dli_queue_compute_units_max", "The most CUs the queue scales out to.", Attr("compute_units_max")),
        _series("dli_queue_used_compute_units", "CUs of the queue in use, as DLI reports it.",
                Attr("used_compute_units")),
        _series("dli_queue_restarting", "1 while the queue is restarting, else 0.", Attr("restarting", flag=True)),
    ),
)


def _request(options: Options) -> ListRequest:
    return ListRequest(NAME, PATH, (ALL_TYPES,), parse_page, attrgetter("name"), paged=False)


def _note(results: Sequence[Result]) -> str:
    """For ``--check``: how many queues, and their CUs."""
    [result] = results
    if result.records is None:
        return ""
    queues: list[Queue] = result.records
    total = sum(q.compute_units or 0 for q in queues)
    used = sum(q.used_compute_units or 0 for q in queues)
    general = sum(1 for q in queues if q.queue_type == "general")
    return f"queues: {len(queues)} ({general} general), {total} CUs, {used:g} in use"


_requests, _source = one_list(_request)
RESOURCE = Resource(NAME, TABLE, _requests, _source, _note,
                    switch=Switch("QUEUES", "QUEUE_INTERVAL_SECONDS", default_interval=300.0))
