"""Families held as samples: counts over records, the health of each project's reads, and the
exporter's own series. Pure functions over the catalog's specs and a snapshot.

The per-record series (most of the output) are rendered straight to lines from their tables
(:func:`exporter.render.render_records`); everything else is small and goes through here.
Families are built fresh for each scrape from the snapshot behind it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from prometheus_client.metrics_core import Metric

from . import __version__
from .catalog import SPECS
from .domain import Snapshot, Target
from .render import SpecFamily
from .series import Count, Health

Sample = tuple[str, tuple[str, ...], tuple[str, ...], float]  # sample name, label names, label values, value


class Family(SpecFamily):
    """One metric family's samples, cheap to fill: label values are plain tuples in the order of
    the spec's labels."""

    __slots__ = ("samples",)

    def __init__(self, name: str) -> None:
        super().__init__(SPECS[name])
        self.samples: list[Sample] = []

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append((self.spec.name, self.spec.labels, values, value))


def count_family(count: Count, projects: Iterable[tuple[str, list[Any]]]) -> Family:
    """Records counted by the count's attributes (only combinations that exist)."""
    family = Family(count.spec.name)
    combination = attrgetter(*count.by)
    for pid, records in projects:
        counts = Counter(map(combination, records))
        for values, n in sorted(counts.items()):
            family.add((pid, *(values if isinstance(values, tuple) else (values,))), n)
    return family


def health_families(snapshot: Snapshot, project_ids: Iterable[str], resource: str,
                    health: Iterable[Health]) -> list[Family]:
    """A resource's own health series for each project (those with a value)."""
    families = [(h, Family(h.spec.name)) for h in health]
    for pid in project_ids:
        result, last = snapshot.result(pid, resource), snapshot.succeeded_at(pid, resource)
        for h, family in families:
            value = h.value(result, last)
            if value is not None:
                family.add((pid,), value)
    return [family for _, family in families]


def project_families(snapshot: Snapshot, targets: Iterable[Target], resources: Iterable[str]) -> list[Family]:
    """Each project (its region, "" where unknown; its name; how it is known), and whether each
    resource was read."""
    info = Family("dli_project_info")
    up = Family("dli_resource_up")
    last = Family("dli_resource_last_success_timestamp_seconds")
    names = list(resources)
    for target in targets:
        pid = target.project_id
        info.add((pid, target.region, target.name, target.source), 1)
        for name in names:
            result = snapshot.result(pid, name)
            up.add((pid, name), 1 if result is not None and result.ok else 0)
            succeeded = snapshot.succeeded_at(pid, name)
            if succeeded is not None:
                last.add((pid, name), succeeded)
    return [info, up, last]


def scrape_family(timeout: float) -> Family:
    family = Family("dli_scrape_timeout_seconds")
    family.add((), timeout)
    return family


def exporter_families(*, sweeps: int, cache_hits: int, targets: int) -> list[Family]:
    """The exporter's own series: sweeps, cache hits, targets held, build."""
    sweeps_family = Family("dli_sweeps_total")
    sweeps_family.add((), sweeps)
    hits = Family("dli_cache_hits_total")
    hits.add((), cache_hits)
    held = Family("dli_targets")
    held.add((), targets)
    build = Family("dli_exporter_build_info")
    build.add((__version__,), 1)
    return [sweeps_family, hits, held, build]


def credential_family(credential: str, held: bool) -> Family:
    """Whether the process's credential is refused (and its calls held back)."""
    family = Family("dli_credential_held")
    family.add((credential,), 1 if held else 0)
    return family


def from_client_metric(metric: Metric) -> Family:
    """A prometheus-client metric of our catalog as a Family, its label sets sorted, without the
    ``_created`` samples (which our exposition has never had)."""
    name = metric.name + "_total" if metric.type == "counter" else metric.name
    family = Family(name)
    order = family.spec.labels
    samples = []
    for sample in metric.samples:
        if sample.name.endswith("_created"):
            continue
        names = tuple(sample.labels)
        samples.append((sample.name, names, tuple(sample.labels[n] for n in names), sample.value))
    # Sorted by the family's own labels; within a label set, the stable sort keeps the histogram's
    # buckets, count and sum in prometheus-client's order.
    samples.sort(key=lambda s: tuple(dict(zip(s[1], s[2], strict=True)).get(n, "") for n in order))
    family.samples.extend(samples)
    return family
