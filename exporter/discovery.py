"""The projects a scrape reads: the configured ones, and those found from the credential alone.

With discovery on, IAM's list of the account's projects is looked up on the first scrape that
needs it and again every ``interval`` (in the background: a scrape never waits for a refresh,
only for the very first look-up). A project is read when

* it is enabled and not the account itself;
* its name places it in a region (``cn-north-4``, or a sub-project ``cn-north-4_analytics``),
  which a name such as ``MOS`` does not;
* DLI is offered in that region (the SDK's region table), and the region is among
  ``DLI_EXPORTER_REGIONS`` when those are given;
* its job list is not refused for permission: each new project is read once (one job) at the
  look-up, and one refused with 403 is *unreadable*: left out, counted, and tried again at the
  next look-up. One that was read and is refused later is down (``dli_up 0``), as any project.

A failed look-up keeps the last list (and is tried again within a minute). Everything left out is
said once, with why: the log, ``--check`` and :meth:`Discovery.report` tell the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from .dli.errors import Failure
from .domain import CONFIGURED, DISCOVERED, PROBED, Clock, Deadline, FoundProject, Result, Target
from .families import Family
from .regions import REGION, NoEndpoint
from .workers import DaemonPool

log = logging.getLogger(__name__)

RETRY_FAILED = 60.0  # seconds before a failed look-up is tried again (at most the interval)
LOOKUP_TIMEOUT = 60.0  # a look-up in the background (IAM, then one read of each new project) gets this long
CHECKS = 4  # projects checked for readability at once
READABLE, UNREADABLE = "readable", "unreadable"
SUB_PROJECT = "_"  # a sub-project is named {region}_{name}
META_REGION, META_NAME = "__meta_dli_region", "__meta_dli_project_name"  # HTTP SD's labels of a project

Lookup = Callable[[Deadline], "list[FoundProject] | Failure"]
Place = Callable[[str, str], Target]  # (project id, region) -> the target, or NoEndpoint


@dataclass(frozen=True)
class LeftOut:
    """A project the look-up found and does not read, and why."""

    project_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class Report:
    """What the last look-up found: the projects read, those refused, those left out and why."""

    readable: tuple[Target, ...]
    unreadable: tuple[Target, ...]
    left_out: tuple[LeftOut, ...]
    error: str  # the last look-up's failure ("" when it succeeded)
    looked_up: bool  # a look-up succeeded at least once


def region_of(name: str) -> str | None:
    """The region a project's name places it in: ``cn-north-4`` and ``cn-north-4_analytics`` are
    in cn-north-4; ``MOS`` is in none."""
    region = name.split(SUB_PROJECT, 1)[0]
    return region if REGION.fullmatch(region) else None


class Discovery:
    """The targets of ``/metrics``: ``configured``, and with ``enabled`` the account's projects."""

    def __init__(self, configured: Sequence[Target], *, enabled: bool, lookup: Lookup | None = None,
                 check: Callable[[Target, Deadline], Result] | None = None, place: Place | None = None,
                 served: Iterable[str] = (), regions: Iterable[str] = (), interval: float = 600.0,
                 on_change: Callable[[tuple[Target, ...]], None] | None = None,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._configured = tuple(configured)
        self._ids = {t.project_id for t in self._configured}
        self.enabled = enabled and lookup is not None and check is not None and place is not None
        self._lookup, self._check, self._place = lookup, check, place
        self._served, self._regions = frozenset(served), frozenset(regions)
        self._interval = interval
        self._on_change = on_change
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()
        self._readable: dict[str, Target] = {}
        self._unreadable: dict[str, Target] = {}
        self._left_out: tuple[LeftOut, ...] = ()
        self._error = ""
        self._last_success: float | None = None
        self._due = 0.0  # clock(): the next look-up
        self._running: threading.Event | None = None
        self._told: set[str] = set()  # left-out reasons already logged (once each)
        self._checks = DaemonPool(CHECKS, "dli-discovery") if self.enabled else None

    def __repr__(self) -> str:
        return f"Discovery(enabled={self.enabled}, found={len(self._readable)})"

    # --- what the scrapes ask ---

    def targets(self, deadline: Deadline) -> tuple[Target, ...]:
        """The projects to read now. The first look-up is waited for (until ``deadline``); a
        refresh that is due is started, and this scrape reads the list as it was."""
        if not self.enabled:
            return self._configured
        running = self._start_if_due(deadline)
        if running is not None and self._last_success is None:
            running.wait(deadline.left())
        with self._lock:
            return self._configured + tuple(self._readable.values())

    def known(self, target: Target) -> Target:
        """``target`` (a probed project) with its name and how the exporter knows it."""
        with self._lock:
            found = self._readable.get(target.project_id) or self._unreadable.get(target.project_id)
        if found is not None:
            return replace(target, name=found.name, source=DISCOVERED)
        if target.project_id in self._ids:
            return replace(target, source=CONFIGURED)
        return replace(target, source=PROBED)

    def families(self) -> list[Family]:
        """``dli_discovered_projects`` and when the list was last looked up (with discovery on)."""
        if not self.enabled:
            return []
        found = Family("dli_discovered_projects")
        last = Family("dli_discovery_last_success_timestamp_seconds")
        with self._lock:
            found.add((READABLE,), len(self._readable))
            found.add((UNREADABLE,), len(self._unreadable))
            if self._last_success is not None:
                last.add((), self._last_success)
        return [found, last]

    def report(self) -> Report:
        with self._lock:
            return Report(tuple(self._readable.values()), tuple(self._unreadable.values()), self._left_out,
                          self._error, self._last_success is not None)

    def http_sd(self, deadline: Deadline) -> list[dict[str, object]]:
        """Prometheus' HTTP service discovery: one target per project read, its region and name
        as meta labels (for relabelling: as target labels, ``name`` and ``region`` would clash
        with the job series' own and be renamed ``exported_*``), and ``__param_region`` so that
        ``/probe`` reads it at its region's endpoint."""
        groups: list[dict[str, object]] = []
        for target in self.targets(deadline):
            labels = {META_REGION: target.region, META_NAME: target.name}
            if target.region:
                labels["__param_region"] = target.region
            groups.append({"targets": [target.project_id], "labels": labels})
        return groups

    def look_up_now(self, deadline: Deadline) -> Report:
        """One look-up, waited for (``--check``)."""
        running = self._start_if_due(deadline, force=True)
        if running is not None:
            running.wait(deadline.left())
        return self.report()

    def close(self) -> None:
        if self._checks is not None:
            self._checks.shutdown()

    # --- the look-up ---

    def _start_if_due(self, deadline: Deadline, force: bool = False) -> threading.Event | None:
        with self._lock:
            if self._running is not None:
                return self._running
            if not force and self._clock() < self._due:
                return None
            self._running = running = threading.Event()
        # The first look-up runs by the scrape's deadline; later ones by their own (no scrape waits).
        budget = deadline if self._last_success is None else Deadline.after(LOOKUP_TIMEOUT, self._clock)
        threading.Thread(target=self._look_up, args=(budget, running), name="dli-discovery", daemon=True).start()
        return running

    @property
    def _retry_in(self) -> float:
        """Seconds until a failed look-up is tried again."""
        return min(self._interval, RETRY_FAILED)

    def _look_up(self, deadline: Deadline, running: threading.Event) -> None:
        try:
            self._look_up_once(deadline)
        except Exception as exc:  # noqa: BLE001  (a bug must not stop discovery for good)
            log.error("project look-up failed unexpectedly", extra={"error": repr(exc)})
            with self._lock:
                self._due = self._clock() + self._retry_in
        finally:
            with self._lock:
                self._running = None
            running.set()

    def _look_up_once(self, deadline: Deadline) -> None:
        if self._lookup is None:
            return
        found = self._lookup(deadline)
        if isinstance(found, Failure):
            log.warning("project look-up failed: keeping the last list",
                        extra={"retry_in": round(self._retry_in), **found.log_fields()})
            with self._lock:
                self._error = str(found)
                self._due = self._clock() + self._retry_in
            return
        candidates, left_out = self._place_all(found)
        with self._lock:
            known = dict(self._readable)
        decided = self._checked([t for t in candidates if t.project_id not in known], deadline)
        readable = {t.project_id: t for t in candidates
                    if t.project_id in known or decided.get(t.project_id, True)}
        unreadable = {t.project_id: t for t in candidates if t.project_id not in readable}
        with self._lock:
            before, self._readable, self._unreadable = self._readable, readable, unreadable
            self._left_out, self._error = tuple(left_out), ""
            self._last_success = self._wall()
            self._due = self._clock() + self._interval
        self._tell(before, readable, unreadable, left_out)
        if self._on_change is not None:
            self._on_change(self._configured + tuple(readable.values()))

    def _place_all(self, found: Sequence[FoundProject]) -> tuple[list[Target], list[LeftOut]]:
        """The projects to read (not checked yet), and those left out with why."""
        candidates: list[Target] = []
        left_out: list[LeftOut] = []
        place = self._place
        if place is None:
            return candidates, left_out
        for project in found:
            if project.project_id in self._ids:
                continue  # configured: read as configured
            region = region_of(project.name)
            reason = ""
            if project.is_domain:
                reason = "the account itself, not a project"
            elif not project.enabled:
                reason = "disabled"
            elif region is None:
                reason = "not a region's project"
            elif region not in self._served:
                reason = f"DLI is not offered in {region}"
            elif self._regions and region not in self._regions:
                reason = f"{region} is not in DLI_EXPORTER_REGIONS"
            if not reason and region is not None:
                try:
                    target = place(project.project_id, region)
                except NoEndpoint as exc:
                    reason = str(exc)
                else:
                    candidates.append(replace(target, name=project.name, source=DISCOVERED))
                    continue
            left_out.append(LeftOut(project.project_id, project.name, reason))
        return candidates, left_out

    def _checked(self, targets: Sequence[Target], deadline: Deadline) -> dict[str, bool]:
        """Whether each new project's job list may be read: False when it is refused with 403.
        One not decided by ``deadline`` (or failing otherwise) is read: the sweep then tells."""
        if not targets or self._checks is None or self._check is None:
            return {}
        futures = {t.project_id: self._checks.submit(self._check, t, deadline) for t in targets}
        decided: dict[str, bool] = {}
        for project_id, future in futures.items():
            try:
                result = future.result(timeout=deadline.left())
            except Exception as exc:  # noqa: BLE001  (not decided in time, or a bug: read it, the sweep tells)
                log.debug("readability not decided", extra={"project_id": project_id, "error": repr(exc)})
                continue
            decided[project_id] = not result.denied
        return decided

    def _tell(self, before: dict[str, Target], readable: dict[str, Target], unreadable: dict[str, Target],
              left_out: Sequence[LeftOut]) -> None:
        """Log what changed: projects found and gone, and each reason for leaving one out (once)."""
        for pid, target in readable.items():
            if pid not in before:
                log.info("project found",
                         extra={"project_id": pid, "project_name": target.name, "region": target.region})
        for pid, target in before.items():
            if pid not in readable:
                log.info("project no longer read", extra={"project_id": pid, "project_name": target.name})
        for pid, target in unreadable.items():
            if f"403:{pid}" not in self._told:
                self._told.add(f"403:{pid}")
                log.warning("project left out: its job list is refused (403); tried again at the next look-up",
                            extra={"project_id": pid, "project_name": target.name, "region": target.region})
        for item in left_out:
            if f"{item.project_id}:{item.reason}" not in self._told:
                self._told.add(f"{item.project_id}:{item.reason}")
                log.info("project left out", extra={"project_id": item.project_id, "project_name": item.name,
                                                    "reason": item.reason})
