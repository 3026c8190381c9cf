"""``dli-exporter --check``: one read of each list of each configured project, as a short table.

This is how a user tells bad credentials from too-narrow permissions before wiring up
Prometheus: a refused key shows as an error with its request id, a DNS name that does not
resolve or a certificate that does not verify names the host, and a user who sees only some
jobs shows fewer jobs than the console (and, read as a user who may not see details, jobs
without ``run_mode``). Every list of every resource the settings switch on is read once (the
jobs in both views, the queues); each resource then sums up what it read in a line. With
discovery on, the account's projects are looked up first: each one found is listed with its
region and name, and whether it is read, refused (403) or left out and why; then each project
read is checked as a configured one is. Exit code 0 when every read succeeded, else 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from .discovery import Report
from .dli.api import DliApi
from .domain import Deadline, Result, Target
from .logs import one_line
from .resources import REGISTERED, Options, Resource
from .selfmetrics import ApiStats
from .settings import Settings
from .wiring import build_api, build_discovery

CHECK_TIMEOUT = 30.0  # seconds for each read, at least: no scrape is waiting


def _row(name: str, result: Result) -> str:
    outcome = "ok" if result.ok else "failed"
    count = len(result.records) if result.records is not None else 0
    return f"  {name:<12} {outcome:<6} {count:>6} {result.pages:>6} {result.duration:>8.2f}"


def check_project(api: DliApi, resources: Sequence[Resource], options: Options, target: Target, *,
                  timeout: float, out: TextIO, endpoint_shown: bool = False) -> bool:
    """Read each list of ``target`` once and print its table; True when every read succeeded."""
    where = f"  endpoint {target.endpoint}" if endpoint_shown else ""
    named = f"  name {one_line(target.name)}" if target.name else ""
    lines = [f"project {target.project_id}  region {target.region or '-'}{named}{where}  auth {api.auth.describe()}",
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


def print_report(report: Report, iam: str, out: TextIO) -> None:
    """What a look-up found: every project, read, refused or left out, with its region and name."""
    found = len(report.readable) + len(report.unreadable) + len(report.left_out)
    lines = [f"discovery  IAM {iam}  projects found {found}: read {len(report.readable)}, "
             f"refused {len(report.unreadable)}, left out {len(report.left_out)}"]
    if report.error:
        lines.append(f"  error (look-up): {one_line(report.error)}")
    lines += [f"  {'read':<9} {t.project_id:<32}  {one_line(t.name)}  region {t.region}" for t in report.readable]
    lines += [f"  {'refused':<9} {t.project_id:<32}  {one_line(t.name)}  region {t.region}: its job list is "
              "refused (403); tried again at the next look-up" for t in report.unreadable]
    lines += [f"  {'left out':<9} {item.project_id:<32}  {one_line(item.name)}: {item.reason}"
              for item in report.left_out]
    print("\n".join(lines), file=out, flush=True)


def run_check(settings: Settings, out: TextIO) -> int:
    """Check every configured project, and every one a look-up finds; 0 when all were read, else 1."""
    api = build_api(settings, ApiStats())
    options = settings.resource_options()
    resources = [r for r in REGISTERED if settings.reads(r)]
    timeout = max(CHECK_TIMEOUT, settings.scrape_timeout_seconds)
    targets, looked_up = settings.targets, True
    try:
        if api.iam is not None:
            discovery = build_discovery(settings, api)
            try:
                report = discovery.look_up_now(Deadline.after(timeout))
            finally:
                discovery.close()
            print_report(report, api.iam.base, out)
            targets, looked_up = targets + report.readable, not report.error
        results = [check_project(api, resources, options, target, timeout=timeout, out=out,
                                 endpoint_shown=bool(settings.endpoint)) for target in targets]
    finally:
        api.close()
    return 0 if looked_up and all(results) else 1
