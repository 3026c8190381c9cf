"""The collector: one scrape's families, from the snapshot of its targets and the self-metrics.

It keeps no gauges between scrapes: each scrape sweeps (or reuses a sweep) within its own
deadline, which the HTTP route passes in as a :class:`~exporter.domain.ScrapeRequest`, and maps
the result afresh. As a prometheus-client ``Collector`` (``collect()``), it serves any registry
with the default timeout; the HTTP route calls :meth:`DliCollector.fast_families` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .catalog import METRICS, ORDER
from .domain import ScrapeRequest, Snapshot
from .mapping import Family, exporter_families, health_families, job_families, succeeded, summary_family
from .render import FamilyLike, Format, RenderedFamily, render_job_families
from .selfmetrics import ApiStats


class SnapshotSource(Protocol):
    @property
    def sweeps(self) -> int: ...  # scrapes that started a sweep

    @property
    def cache_hits(self) -> int: ...  # scrapes answered from cached or running sweeps

    @property
    def held(self) -> int: ...  # targets held (configured, and probed lately)

    def get(self, deadline: float) -> Snapshot: ...


AnyFamily = Family | RenderedFamily
F = TypeVar("F", bound=FamilyLike)


def _in_table_order(families: Iterable[F]) -> list[F]:
    return sorted(families, key=lambda f: ORDER[f.name])


class DliCollector(Collector):
    """Yields every family of the contract from the snapshot the source gives for this scrape."""

    def __init__(self, source: SnapshotSource, stats: ApiStats, project_ids: Iterable[str], *,
                 per_job: bool = True, show_detail: bool = False, default_timeout: float = 10.0,
                 regions: Mapping[str, str] | None = None, exporter_wide: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._stats = stats
        self._project_ids = list(project_ids)
        self._regions = dict(regions or {})  # project id -> region, for dli_project_info
        # The exporter's own counters and build info go on /metrics only, not on each /probe.
        self._exporter_wide = exporter_wide
        self._per_job = per_job
        self._show_detail = show_detail
        self._default_timeout = default_timeout
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry check names without a sweep."""
        for spec in METRICS:
            yield Family(spec.name).to_metric()

    def _request(self, scrape: ScrapeRequest | None) -> ScrapeRequest:
        if scrape is not None:
            return scrape
        return ScrapeRequest(self._clock() + self._default_timeout, self._default_timeout)

    def _rest(self, snapshot: Snapshot, scrape: ScrapeRequest) -> list[Family]:
        health = health_families(snapshot, self._project_ids, scrape_timeout=scrape.timeout, regions=self._regions)
        if not self._exporter_wide:
            return health
        return [*health, *self._stats.families(),
                *exporter_families(sweeps=self._source.sweeps, cache_hits=self._source.cache_hits,
                                  targets=self._source.held)]

    def families(self, scrape: ScrapeRequest | None = None) -> list[Family]:
        """This scrape's families, sweeping (or reusing a sweep) within the scrape's deadline."""
        scrape = self._request(scrape)
        snapshot = self._source.get(scrape.deadline)
        jobs = job_families(snapshot, self._project_ids, per_job=self._per_job, show_detail=self._show_detail)
        return _in_table_order([*jobs, *self._rest(snapshot, scrape)])

    def fast_families(self, fmt: Format, scrape: ScrapeRequest | None = None,
                      escaping: str = "underscores") -> list[AnyFamily]:
        """The same families as :meth:`families`, the per-job ones already rendered as lines (see
        :func:`exporter.render.render_job_families`), for :func:`exporter.render.render`."""
        scrape = self._request(scrape)
        snapshot = self._source.get(scrape.deadline)
        projects = list(succeeded(snapshot, self._project_ids))
        rendered: list[RenderedFamily] = []
        if self._per_job:
            rendered = render_job_families(projects, show_detail=self._show_detail, fmt=fmt, escaping=escaping)
        return _in_table_order([summary_family(projects), *rendered, *self._rest(snapshot, scrape)])

    def collect(self) -> Iterator[Metric]:
        for family in self.families():
            yield family.to_metric()
