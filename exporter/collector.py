"""The collector: one scrape's families, composed from the registered resources.

It keeps no gauges between scrapes: each scrape sweeps (or reuses a sweep) of its targets within
its own deadline, which the HTTP route makes and passes in, and renders the result afresh, so a
job that disappears from the API disappears from ``/metrics``. For each resource (in the order
they are registered) it renders whatever its table declares: its counts, its per-record series
(straight to lines) and its health; then each project and whether each resource was read, the
exporter's own counters and the exporter-wide series (on ``/metrics`` only, not on each ``/probe``).
A resource whose read failed shows no series of its own, and nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from .catalog import ORDER
from .domain import Deadline, Snapshot, Target
from .families import (
    Family,
    count_family,
    exporter_families,
    health_families,
    project_families,
    scrape_family,
)
from .render import FamilyLike, Format, render_records
from .resources import Resource
from .selfmetrics import ApiStats
from .series import RecordSeries
from .sweeper import Sweeper


@dataclass(frozen=True)
class Exposed:
    """A resource as this exporter exposes it: its per-record series that the settings turn on."""

    resource: Resource
    series: tuple[RecordSeries, ...]


class DliCollector:
    """Every family of the contract for the targets of a scrape."""

    def __init__(self, sweeper: Sweeper, stats: ApiStats, exposed: Sequence[Exposed],
                 exporter_wide: Callable[[], list[Family]] = list) -> None:
        self._sweeper = sweeper
        self._stats = stats
        self._exposed = tuple(exposed)
        self._exporter_wide = exporter_wide  # more of the exporter's own (the project look-up's)

    def __repr__(self) -> str:
        return f"DliCollector({[e.resource.name for e in self._exposed]})"

    def families(self, targets: Sequence[Target], deadline: Deadline, fmt: Format, escaping: str = "underscores",
                 *, exporter_wide: bool = True) -> list[FamilyLike]:
        """This scrape's families for ``targets``, in the catalog's order, sweeping (or reusing
        sweeps) within ``deadline``; the exporter's own series with ``exporter_wide``."""
        snapshot = self._sweeper.get(targets, deadline)
        project_ids = [t.project_id for t in targets]
        families: list[FamilyLike] = []
        for exposed in self._exposed:
            families += self._resource_families(exposed, snapshot, project_ids, fmt, escaping)
        families += project_families(snapshot, targets, [e.resource.name for e in self._exposed])
        families.append(scrape_family(deadline.timeout))
        if exporter_wide:
            families += self._stats.families()
            families += exporter_families(sweeps=self._sweeper.sweeps, cache_hits=self._sweeper.cache_hits,
                                          targets=self._sweeper.target_count)
            families += self._exporter_wide()
        return sorted(families, key=lambda f: ORDER[f.name])

    @staticmethod
    def _resource_families(exposed: Exposed, snapshot: Snapshot, project_ids: list[str], fmt: Format,
                           escaping: str) -> list[FamilyLike]:
        resource = exposed.resource
        table = resource.table
        by_key = attrgetter(table.key)
        projects: list[tuple[str, list[Any]]] = [
            (pid, sorted(result.records, key=by_key)) for pid in project_ids
            if (result := snapshot.result(pid, resource.name)) is not None and result.records is not None]
        families: list[FamilyLike] = [count_family(count, projects) for count in table.counts]
        if exposed.series:
            families += render_records(table, exposed.series, projects, fmt, escaping)
        families += health_families(snapshot, project_ids, resource.name, table.health)
        return families
