"""What a resource is: what one API list gives, as one declaration.

A :class:`Resource` names its list requests (and, through them, its parser and records), its
metric table, its cadence, the settings that switch it on and set that cadence, and how
``--check`` sums it up. The sweeper reads each registered resource of each target on its own
cadence, the collector renders each table, the settings read each switch, ``--check`` reads each
request: adding a resource is one module that declares one, and one line in
:mod:`exporter.resources` that registers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..dli.reader import ListRequest
from ..domain import Deadline, Result, Target
from ..series import Table

ReadList = Callable[[Target, ListRequest, Deadline], Result]  # DliApi.read


@dataclass(frozen=True)
class Switch:
    """The settings of a resource that can be turned off: ``DLI_EXPORTER_{enabled}`` (true or
    false) and ``DLI_EXPORTER_{interval}`` (seconds between reads; 0: with every sweep)."""

    enabled: str
    interval: str
    default_interval: float
    default_enabled: bool = True


@dataclass(frozen=True)
class Options:
    """The plain configuration resources are built with (the wiring takes it from the settings)."""

    cache_seconds: float = 10.0
    show_detail: bool = True
    detail_interval: float = 600.0
    job_filters: Mapping[str, str] = field(default_factory=dict)
    per_job: bool = True
    intervals: Mapping[str, float] = field(default_factory=dict)  # a switched resource's, by name
    workers: int = 16  # reads of one kind that may run at once (the targets there are, at most)

    def interval(self, resource: str, default: float) -> float:
        return self.intervals.get(resource, default)


class Source(Protocol):
    """How a resource is read, with state kept per target (a list read as it comes, or the job
    list's two views on their cadences)."""

    def read(self, target: Target, deadline: Deadline) -> Result: ...

    def forget(self, target: Target) -> None: ...

    def close(self) -> None: ...


class OneList:
    """A resource read with one list request, nothing kept between reads."""

    def __init__(self, read: ReadList, request: ListRequest) -> None:
        self._read = read
        self._request = request

    def __repr__(self) -> str:
        return f"OneList({self._request.name})"

    def read(self, target: Target, deadline: Deadline) -> Result:
        return self._read(target, self._request, deadline)

    def forget(self, target: Target) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Resource:
    """One API list as the exporter reads and exposes it.

    ``requests`` gives the list requests it makes (``--check`` reads each once); ``source``
    builds how it is read; ``groups`` says which optional series the options turn on; ``note``
    sums up what ``--check`` read (one line, or "" for nothing to say)."""

    name: str  # the resource label of dli_resource_up
    table: Table
    requests: Callable[[Options], tuple[ListRequest, ...]]
    source: Callable[[ReadList, Options], Source]
    note: Callable[[list[Result]], str]
    switch: Switch | None = None  # None: always read, with every sweep
    groups: Callable[[Options], frozenset[str]] = lambda options: frozenset()

    def cadence(self, options: Options) -> float:
        """Seconds a successful read is reused: the cache's, or the resource's own interval."""
        if self.switch is None:
            return options.cache_seconds
        return max(options.cache_seconds, options.interval(self.name, self.switch.default_interval))

    def reuse_for(self, options: Options, result: Result) -> float:
        """Seconds ``result`` is reused. A failed read only for the cache's time: the next scrape
        tries again (the credential's hold-back keeps a refused key from being tried too soon)."""
        return self.cadence(options) if result.ok else options.cache_seconds


def one_list(request: Callable[[Options], ListRequest]) -> tuple[Callable[[Options], tuple[ListRequest, ...]],
                                                                 Callable[[ReadList, Options], Source]]:
    """``requests`` and ``source`` of a resource read with one list request."""
    return (lambda options: (request(options),)), (lambda read, options: OneList(read, request(options)))

