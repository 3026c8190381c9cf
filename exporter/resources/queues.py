"""DLI queues: ``GET /v1.0/{project_id}/queues?queue_type=all``, the capacity Flink jobs run on.

The list's default is ``queue_type=sql``, which hides exactly the ``general`` queues Flink runs
on, so every queue is asked for. No paging: one answer holds every queue. Read on its own cadence
(``DLI_EXPORTER_QUEUE_INTERVAL_SECONDS``, 300 by default): a queue's size changes rarely. A
queue's ``queue`` label is the ``queue_name`` jobs carry, so the CUs running jobs ask can be set
against the queue's in one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..dli import schema
from ..dli.reader import ListRequest
from ..dli.schema import PayloadError
from ..domain import Page, Result
from ..series import PROJECT_ID, Attr, Const, MetricSpec, RecordSeries, Table
from .base import Options, Resource, Switch, one_list

NAME = "queues"
PATH = "queues"
ALL_TYPES = ("queue_type", "all")  # the default is sql: Flink's general queues would be left out
QUEUES = "queues"  # the answer's list
RESOURCE_MODES = {0: "shared", 1: "dedicated"}


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


def _label(raw: dict[str, Any], key: str, where: str) -> str:
    value = schema.to_label(raw.get(key))
    if value is None:
        raise PayloadError(f"{where}.{key} is {schema.kind(raw.get(key))}, not a string")
    return value


def _number(raw: dict[str, Any], key: str, where: str, convert: Any) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        return None
    converted = convert(value)
    if converted is None:
        raise PayloadError(f"{where}.{key} is {schema.kind(value)} that is not a number")
    return converted


def parse_queue(raw: Any, where: str) -> Queue:
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} is {schema.kind(raw)}, not an object")
    name = _label(raw, "queue_name", where)
    if not name:
        raise PayloadError(f"{where} has no queue_name")
    mode = _number(raw, "resource_mode", where, schema.to_int)
    restarting = raw.get("is_restarting")
    if restarting is not None and schema.to_bool(restarting) is None:
        raise PayloadError(f"{where}.is_restarting is {schema.kind(restarting)} that is not a boolean")
    return Queue(
        name=name,
        queue_type=_label(raw, "queue_type", where),
        resource_mode=RESOURCE_MODES.get(mode, str(mode)) if mode is not None else "",
        engine=_label(raw, "engine", where),
        elastic_resource_pool=_label(raw, "elastic_resource_pool_name", where),
        compute_units=_number(raw, "cu_count", where, schema.to_int),
        compute_units_min=_number(raw, "cu_scale_in_limit", where, schema.to_int),
        compute_units_max=_number(raw, "cu_scale_out_limit", where, schema.to_int),
        used_compute_units=_number(raw, "used_cu", where, schema.to_float),
        restarting=schema.to_bool(restarting) if restarting is not None else None,
    )


def parse_page(payload: Any) -> Page:
    """The queues answer (``is_success`` a bool here) as one page holding every queue."""
    payload = schema.check_success(payload)
    raw = payload.get(QUEUES)
    if not isinstance(raw, list):  # missing too: an answer that says nothing of queues is not "none"
        raise PayloadError(f"the answer has no list of {QUEUES}")
    return Page(None, [parse_queue(item, f"{QUEUES}[{i}]") for i, item in enumerate(raw)], len(raw))


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
