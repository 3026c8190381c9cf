"""What a metric table is made of: metric specs, and how a resource's records give their series.

A resource declares one :class:`Table`: its per-record series (each a spec, the value a record
gives it, the record attributes its labels come from), the counts over its records, and the
health series of a project's read. The fast renderer writes the per-record series by a loop it
generates from the table, and the collector renders whatever the registered resources' tables
declare: a series is written once, in its table, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .domain import Result

PROJECT_ID = "project_id"  # the label every series of a project carries first

# Legacy Prometheus names only ([a-zA-Z_][a-zA-Z0-9_]*, no colons): no escaping scheme has to quote
# them, which the renderer relies on.
LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed (counters end in _total)
    type: str  # gauge, counter or histogram
    help: str
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not all(LEGACY_NAME.fullmatch(n) for n in (self.name, *self.labels)):
            raise ValueError(f"{self.name}: not a legacy metric or label name")


@dataclass(frozen=True)
class Attr:
    """A record's value for a series: its attribute ``name`` (None: no series for that record),
    divided by ``divisor``, or, as a ``flag``, a boolean as 0 or 1. A function from a record to a
    value; being declarative too, the fast renderer writes it inline instead of calling it."""

    name: str
    divisor: int | None = None
    flag: bool = False

    def __call__(self, record: Any) -> float | None:
        value = getattr(record, self.name)
        if value is None:
            return None
        if self.flag:
            return 1 if value else 0
        return value / self.divisor if self.divisor else value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Const:
    """A series whose value is always the same (an ``_info`` series, the current status); with
    ``when``, only for records whose attribute of that name is not empty."""

    value: int
    when: str | None = None

    def __call__(self, record: Any) -> float | None:
        if self.when is not None and not getattr(record, self.when):
            return None
        return self.value


@dataclass(frozen=True)
class RecordSeries:
    """A per-record metric: its spec, the value a record gives it, and the record attributes
    that give the spec's labels after ``project_id`` and the table's key. ``group`` names what
    must be turned on for it to be exposed ("" for always)."""

    spec: MetricSpec
    value: Attr | Const
    labels: tuple[str, ...] = ()  # record attribute names, in the order of spec.labels[2:]
    group: str = ""

    def label_values(self, record: Any) -> tuple[str, ...]:
        return tuple(getattr(record, name) for name in self.labels)


@dataclass(frozen=True)
class Count:
    """A count of a project's records by the attributes ``by`` (the spec's labels after
    ``project_id``): only the combinations that exist."""

    spec: MetricSpec
    by: tuple[str, ...]


@dataclass(frozen=True)
class Health:
    """A series of a project's read of the resource, present or not: a function of its latest
    result (None before the first) and when it last succeeded (epoch seconds, or None)."""

    spec: MetricSpec
    value: Callable[[Result | None, float | None], float | None]


@dataclass(frozen=True)
class Table:
    """Every series of one resource. Records are keyed by ``key`` (a record attribute), exposed as
    the label ``key_label``; ``numeric_key`` says the key is an integer (no label escaping)."""

    key: str
    key_label: str
    counts: tuple[Count, ...] = ()
    series: tuple[RecordSeries, ...] = ()
    health: tuple[Health, ...] = ()
    numeric_key: bool = False

    def __post_init__(self) -> None:
        for s in self.series:
            if s.spec.labels[:2] != (PROJECT_ID, self.key_label) or len(s.spec.labels) != 2 + len(s.labels):
                raise ValueError(f"{s.spec.name}: labels do not match the spec's")
        for c in self.counts:
            if c.spec.labels[:1] != (PROJECT_ID,) or len(c.spec.labels) != 1 + len(c.by):
                raise ValueError(f"{c.spec.name}: labels do not match the spec's")

    @property
    def specs(self) -> tuple[MetricSpec, ...]:
        """Every metric of the table, in the order they are exposed."""
        return (*(c.spec for c in self.counts), *(s.spec for s in self.series), *(h.spec for h in self.health))

    def exposed(self, groups: frozenset[str]) -> tuple[RecordSeries, ...]:
        """The per-record series exposed when ``groups`` are turned on."""
        return tuple(s for s in self.series if not s.group or s.group in groups)
