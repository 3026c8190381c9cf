"""``dli-exporter --check``: one read of each configured project in both views, as a short table.

This is how a user tells bad credentials from too-narrow permissions before wiring up
Prometheus: a refused key shows as an error with its request id, a DNS name that does not
resolve or a certificate that does not verify names the host, and a user who sees only some
jobs shows fewer jobs than the console (and, read as a user who may not see details, jobs
without ``run_mode``). Exit code 0 when every read succeeded, else 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from .dli.api import DliApi
from .domain import ProjectResult, Target, View
from .logs import one_line
from .selfmetrics import ApiStats
from .settings import AccessKey, Settings
from .views import merge

CHECK_TIMEOUT = 30.0  # seconds for each read, at least: no scrape is waiting


def _auth(settings: Settings) -> str:
    secret = settings.secret
    if isinstance(secret, AccessKey):
        kind = "AK/SK, temporary" if secret.security_token is not None else "AK/SK"
        return f"{kind} ({one_line(secret.ak[:4])}...)"
    return f"IAM password ({one_line(secret.domain)}/{one_line(secret.username)})"


def _row(view: View, result: ProjectResult) -> str:
    outcome = "ok" if result.ok else "failed"
    jobs = len(result.jobs) if result.jobs is not None else 0
    return f"  {view.value:<8} {outcome:<6} {jobs:>5} {result.pages:>6} {result.duration:>8.2f}"


def check_project(api: DliApi, settings: Settings, target: Target, out: TextIO,
                  clock: Callable[[], float] = time.monotonic) -> bool:
    """Read ``target`` in both views and print its table; True when both reads succeeded."""
    timeout = max(CHECK_TIMEOUT, settings.scrape_timeout_seconds)
    summary = api.read(target, View.SUMMARY, clock() + timeout)
    detail = api.read(target, View.DETAIL, clock() + timeout)
    region = target.region or "-"
    where = f"  endpoint {target.endpoint}" if settings.endpoint else ""
    header = f"  {'view':<8} {'result':<6} {'jobs':>5} {'pages':>6} {'seconds':>8}"
    lines = [f"project {target.project_id}  region {region}{where}  auth {_auth(settings)}", header,
             _row(View.SUMMARY, summary), _row(View.DETAIL, detail)]
    if summary.jobs is not None:
        details = {job.job_id: job for job in detail.jobs or ()}
        jobs, _ = merge(summary.jobs, details)
        no_mode = sum(1 for job in jobs if not job.run_mode)
        no_queue = sum(1 for job in jobs if not job.queue)
        lines.append(f"  jobs without run_mode: {no_mode}   without queue: {no_queue}")
    error = summary.error or detail.error
    if error:
        lines.append(f"  error: {one_line(error)}")  # the API's text, quoted: one line whatever it holds
    print("\n".join(lines), file=out, flush=True)
    return summary.ok and detail.ok


def run_check(settings: Settings, out: TextIO) -> int:
    """Check every configured project; 0 when all were read in both views, else 1."""
    api = DliApi(settings, ApiStats())
    try:
        results = [check_project(api, settings, target, out) for target in settings.targets]
    finally:
        api.close()
    return 0 if all(results) else 1
