"""``dli-exporter --check``: one read of each list of each configured project, as a short table.

This is how a user tells bad credentials from too-narrow permissions before wiring up
Prometheus: a refused key shows as an error with its request id, a DNS name that does not
resolve or a certificate that does not verify names the host, and a user who sees only some
jobs shows fewer jobs than the console (and, read as a user who may not see details, jobs
without ``run_mode``). Every list of every resource the settings switch on is read once (the
jobs in both views, the queues); each resource then sums up what it read in a line. Exit code 0
when every read succeeded, else 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from .dli.api import DliApi
from .domain import Deadline, Result, Target
from .logs import one_line
from .resources import REGISTERED, Options, Resource
from .selfmetrics import ApiStats
from .settings import Settings
from .wiring import build_api

CHECK_TIMEOUT = 30.0  # seconds for each read, at least: no scrape is waiting


def _row(name: str, result: Result) -> str:
    outcome = "ok" if result.ok else "failed"
    count = len(result.records) if result.records is not None else 0
    return f"  {name:<12} {outcome:<6} {count:>6} {result.pages:>6} {result.duration:>8.2f}"


def check_project(api: DliApi, resources: Sequence[Resource], options: Options, target: Target, *,
                  timeout: float, out: TextIO, endpoint_shown: bool = False) -> bool:
    """Read each list of ``target`` once and print its table; True when every read succeeded."""
    where = f"  endpoint {target.endpoint}" if endpoint_shown else ""
    lines = [f"project {target.project_id}  region {target.region or '-'}{where}  auth {api.auth.describe()}",
             f"  {'list':<12} {'result':<6} {'count':>6} {'pages':>6} {'seconds':>8}"]
    notes, errors = [], []
    for resource in resources:
        requests = resource.requests(options)
        results = [api.read(target, request, Deadline.after(timeout)) for request in requests]
        for request, result in zip(requests, results, strict=True):
            lines.append(_row(request.name, result))
            if result.error:
                # The API's text, quoted: one line whatever it holds.
                errors.append(f"  error ({request.name}): {one_line(result.error)}")
        notes.append(resource.note(results))
    print("\n".join([*lines, *(f"  {note}" for note in notes if note), *errors]), file=out, flush=True)
    return not errors


def run_check(settings: Settings, out: TextIO) -> int:
    """Check every configured project; 0 when all were read, else 1."""
    api = build_api(settings, ApiStats())
    options = settings.resource_options()
    resources = [r for r in REGISTERED if settings.reads(r)]
    timeout = max(CHECK_TIMEOUT, settings.scrape_timeout_seconds)
    try:
        results = [check_project(api, resources, options, target, timeout=timeout, out=out,
                                 endpoint_shown=bool(settings.endpoint)) for target in settings.targets]
    finally:
        api.close()
    return 0 if all(results) else 1
