"""The exporter's vocabulary: targets, deadlines, pages, the result of reading one resource of one
target, and the snapshot a scrape reports.

Plain values that every layer passes around. This module imports nothing of the exporter's own,
so the layers above it (the DLI side, the resources, the sweeper, the HTTP side) can all depend on
it without depending on each other. The records a resource reads (jobs, queues) live with their
resource: each is what one API list gives, and nothing below needs to know its fields.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Clock = Callable[[], float]
MAX_SCRAPE_TIMEOUT = 600.0  # seconds: the longest a scrape may take, asked by a header or configured


CONFIGURED, DISCOVERED, PROBED = "configured", "discovered", "probe"  # how the exporter knows a project


@dataclass(frozen=True)
class Target:
    """One project, read at one endpoint (with the process's one credential). Its ``name`` (IAM's,
    where known) and ``source`` (how the exporter came to read it) describe it and do not tell
    targets apart: the same project found twice is one target, swept once."""

    project_id: str
    endpoint: str
    region: str = ""  # the project's region, where known (an endpoint given outright may not say)
    name: str = field(default="", compare=False)
    source: str = field(default=CONFIGURED, compare=False)


@dataclass(frozen=True)
class FoundProject:
    """A project of the account as IAM lists it: id, name (``cn-north-4``, a sub-project
    ``cn-north-4_analytics``, or no region at all: ``MOS``), whether it is enabled, and whether it
    is the account's domain itself rather than a project."""

    project_id: str
    name: str
    enabled: bool
    is_domain: bool = False


@dataclass(frozen=True)
class Deadline:
    """When a piece of work must be done, on a monotonic clock, and the timeout it was made from.

    A scrape makes one from Prometheus' timeout header (less a margin for rendering) and passes it
    down: the sweeper waits for it, the reader waits for pages by it, and every API call's timeout
    is capped by what is left of it. Work that no scrape waits for (a background refresh) makes
    its own with :meth:`after`."""

    at: float  # clock() by which the work must be done
    timeout: float  # the seconds it was made from (what a scrape announced), for dli_scrape_timeout_seconds
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.at) and math.isfinite(self.timeout)):
            raise ValueError("a deadline must be a finite time")

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, seconds, clock)

    def left(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self.at - self.clock())

    @property
    def passed(self) -> bool:
        return self.clock() >= self.at


class FieldError(NamedTuple):
    """A field of a record that could not be read, and was left out (the rest of the record was
    read): its name upstream (``job.restart_times``), what was wrong (never the value itself),
    and which record (a job id, a queue name)."""

    field: str
    problem: str
    record: str


@dataclass(slots=True)
class Page:
    """One page of a list: its records, what the answer said the total is, how many entries it
    held (duplicates included: a full page means more may follow), and the fields left out."""

    total_count: int | None
    records: list[Any]
    raw_count: int
    field_errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What one read of one resource of one target gave. ``records`` is None when the read failed:
    a resource is reported whole or not at all, never partially."""

    records: list[Any] | None
    error: str | None
    duration: float  # seconds the read took
    finished_at: float  # epoch seconds
    pages: int = 0
    total_count: int | None = None
    field_errors: tuple[FieldError, ...] = ()  # fields left out of records that were read
    # For a resource read in two views on two cadences (jobs): when the slower view merged into
    # these records was last read completely (epoch seconds); None when it never was.
    detail_at: float | None = None
    denied: bool = False  # the read failed because the API refused it permission (403)

    @property
    def ok(self) -> bool:
        return self.records is not None

    @classmethod
    def down(cls, error: str, duration: float, finished_at: float | None = None, *, denied: bool = False) -> Result:
        """A read that failed: no records at all, never a partial list."""
        return cls(None, error, duration, time.time() if finished_at is None else finished_at, denied=denied)


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reports: the latest result of each (project, resource), and when each last
    succeeded (epoch seconds)."""

    results: dict[tuple[str, str], Result]
    last_success: dict[tuple[str, str], float] = field(default_factory=dict)

    def result(self, project_id: str, resource: str) -> Result | None:
        return self.results.get((project_id, resource))

    def succeeded_at(self, project_id: str, resource: str) -> float | None:
        return self.last_success.get((project_id, resource))
