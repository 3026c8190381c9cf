"""The recording and alert rules of dli-exporter, written once.

`deploy/kit/generate.py` writes them out as `deploy/prometheus/dli-exporter.rules.yml` and as the
Prometheus Operator's `deploy/kubernetes/prometheusrule.yaml`; `make test` checks that both are
what this module gives. Edit here, then `make kit`.

How they are built, for the person they page:

* One place for what differs between sites: the runbook and dashboard URLs, the scrape jobs'
  names, and SCOPE, the labels two deployments differ by (a shared Alertmanager or a global
  Prometheus sees both). Every aggregation keeps SCOPE and every join matches on it, so two
  deployments stay two and two replicas of one stay one (replicas differ in `instance` and `pod`
  alone, which every aggregation drops).
* Recording rules do the per-job de-duplication and the info joins once per evaluation: alerts
  and the dashboard read `dli:*` series. The costly part, bridging an outage, looks back only over
  the jobs in trouble (a few), never over every job's series.
* A project whose sweep fails shows no job series. Job alerts bridge that gap: while no replica
  reads the project, the jobs that were in trouble at its last good read (within 30 minutes)
  stay in trouble, so an outage neither resolves a firing alert nor re-pages after it, and a job
  whose trouble had already ended stays ended.
* Summaries name the project only (the same across a notification group); the job, and DLI's own
  reason for its status, go in the description. Alerts carry the project's region, link their
  runbook section and the dashboard with the project filled in.
"""

from __future__ import annotations

from typing import Any

RUNBOOKS = "https://github.com/dli-exporter/dli-exporter/blob/main/docs/runbooks.md"
DASHBOARD = "http://localhost:3000/d/dli-exporter/dli-flink-jobs"  # Grafana's address, and the dashboard's uid
EXPORTER_JOB, PROBE_JOB = "dli-exporter", "dli-probe"  # the scrape jobs' names (deploy/prometheus/*.yml)
SCOPE = ("cluster", "namespace")  # labels that tell deployments apart: kept by every aggregation
BRIDGE = "30m"  # how long a job alert holds its state while its project cannot be read
TROUBLE = ("job_running_exception", "job_submit_fail", "job_cancel_fail", "job_submitting", "job_init",
           "job_canceling", "job_savepointing", "job_arrearage_stopped", "job_arrearage_recovering", "unknown")
STUCK = ("job_submitting", "job_init", "job_canceling", "job_savepointing")
JOB_LABELS = "name, queue, job_type, user_name"  # what a job alert says of the job
INFO_LABELS = ("name", "queue", "job_type", "user_name", "run_mode", "flink_version")  # dli_job_info's
SAYS = ('{{ with printf "dli_job_status_description_info{project_id=%q, job_id=%q}" $labels.project_id '
        '$labels.job_id | query }} DLI says: {{ . | first | label "description" }}{{ end }}')
DETAIL = "dli_detail_last_success_timestamp_seconds"  # 0 while the detail view was never read
JOB = "Flink job {{ $labels.name }} (id {{ $labels.job_id }}, queue {{ $labels.queue }}, owner {{ $labels.user_name }})"


def by(*labels: str) -> str:
    """A label list that keeps the deployment's labels: ``cluster, namespace, project_id``."""
    return ", ".join((*SCOPE, *labels))


def regex(values: tuple[str, ...]) -> str:
    return "|".join(values)


def with_region(expr: str) -> str:
    """``expr`` with the project's region added where it is known (a left join: an alert of a
    project without dli_project_info still fires)."""
    info = "dli:project_info:one"
    return (f"(\n{expr}\n) * on ({by('project_id')}) group_left (region) {info}\n"
            f"or\n(\n{expr}\n) unless on ({by('project_id')}) {info}")


def records() -> list[dict[str, str]]:
    trouble = f'dli_job_status{{status=~"{regex(TROUBLE)}"}}'
    return [
        {"record": "dli:up:max", "expr": f"max by ({by('project_id')}) (dli_up)"},
        {"record": "dli:project_info:one",
         "expr": f"max by ({by('project_id', 'region')}) (topk by ({by('project_id')}) (1, dli_project_info))"},
        {"record": "dli:jobs:max",
         "expr": f"max by ({by('project_id', 'status', 'job_type', 'queue', 'run_mode')}) (dli_jobs)"},
        {"record": "dli:jobs_running:sum",
         "expr": f'sum by ({by("project_id")}) (dli:jobs:max{{status="job_running"}})'},
        {"record": "dli:job_info:one",
         "expr": f"max by ({by('project_id', 'job_id', *INFO_LABELS)}) "
                 f"(topk by ({by('project_id', 'job_id')}) (1, dli_job_info))"},
        {"record": "dli:job_status:max", "expr": f"max by ({by('project_id', 'job_id', 'status')}) (dli_job_status)"},
        # When each project was last read completely, as a sample time (what the job series carry).
        {"record": "dli:good_read:last",
         "expr": f"max by ({by('project_id')}) (last_over_time((timestamp(dli_up) and dli_up == 1)[{BRIDGE}:1m]))"},
        # The jobs in trouble: live, or, while the project is not read, as at its last good read.
        {"record": "dli:job_trouble:bridged",
         "expr": f"max by ({by('project_id', 'job_id', 'status')}) (\n"
                 f"  {trouble}\n"
                 f"  or (\n"
                 f"    (last_over_time(timestamp({trouble})[{BRIDGE}:1m])\n"
                 f"      >= on ({by('project_id')}) group_left () dli:good_read:last)\n"
                 f"    unless on ({by('project_id')}) (dli:up:max == 1)\n"
                 f"  ) * 0 + 1\n)"},
        {"record": "dli:job_trouble:info",
         "expr": f"max by ({by('project_id', 'job_id', 'name', 'queue', 'job_type', 'user_name')}) (\n"
                 f"  (dli:job_info:one and on ({by('project_id', 'job_id')}) dli:job_trouble:bridged)\n"
                 f"  or (last_over_time(dli:job_trouble:info[{BRIDGE}])"
                 f" and on ({by('project_id', 'job_id')}) dli:job_trouble:bridged\n"
                 f"    unless on ({by('project_id')}) (dli:up:max == 1))\n)"},
        # Restarts over 30 minutes, reset-aware: a resubmitted job starts again from 0.
        {"record": "dli:job_restarts:increase30m",
         "expr": f"max by ({by('project_id', 'job_id')}) (increase(dli_job_restarts_total[30m]))"},
        {"record": "dli:queue_asked_cus:sum",
         "expr": f"sum by ({by('project_id', 'queue')}) (\n"
                 f"  (max by ({by('project_id', 'job_id')}) (dli_job_compute_units)\n"
                 f"    and on ({by('project_id', 'job_id')}) dli:job_status:max{{status=\"job_running\"}})\n"
                 f"  * on ({by('project_id', 'job_id')}) group_left (queue) dli:job_info:one\n)"},
    ]


def alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str, *,  # noqa: PLR0917
          project: bool = True, keep_firing_for: str | None = None) -> dict[str, Any]:
    """An alert with its runbook, and for a project's alert its region and the dashboard on it."""
    rule: dict[str, Any] = {"alert": name, "expr": with_region(expr) if project else expr, "for": for_}
    if keep_firing_for:
        rule["keep_firing_for"] = keep_firing_for
    rule["labels"] = {"severity": severity}
    annotations = {"summary": summary, "description": description, "runbook_url": f"{RUNBOOKS}#{name.lower()}"}
    annotations["dashboard_url"] = (f"{DASHBOARD}?var-project={{{{ $labels.project_id }}}}" if project
                                    else DASHBOARD)
    rule["annotations"] = annotations
    return rule


def job_alert(name: str, statuses: tuple[str, ...], for_: str, severity: str,  # noqa: PLR0917  (a table's columns)
              summary: str, what: str) -> dict[str, Any]:
    """A job alert on the (bridged) trouble statuses, naming the job and quoting DLI's reason.

    Without the status label: a job moving from one of these statuses to another stays one alert.
    With several statuses, the alert's value is the current one's place in ``statuses`` (1, 2, ...),
    which ``{{ $status }}`` in ``what`` names: a template that queried the status would run one
    query per active alert on each evaluation."""
    if len(statuses) == 1:
        trouble = f'dli:job_trouble:bridged{{status="{statuses[0]}"}}'
    else:
        trouble = "\n  or ".join(f'dli:job_trouble:bridged{{status="{status}"}} * {code}'
                                 for code, status in enumerate(statuses, 1))
        names = "".join(f'{{{{ else if eq $value {code}.0 }}}}{status}'
                        for code, status in enumerate(statuses, 1)).removeprefix("{{ else ")
        what = what.replace("{{ $status }}", f"{{{{ {names}{{{{ end }}}}")
    expr = (f"max by ({by('project_id', 'job_id')}) (\n  {trouble}\n)\n"
            f"* on ({by('project_id', 'job_id')}) group_left ({JOB_LABELS}) dli:job_trouble:info")
    return alert(name, expr, for_, severity, summary, f"{JOB} {what}{SAYS}")


def alerts() -> list[dict[str, Any]]:
    up, probe = f'up{{job="{EXPORTER_JOB}"}}', f'up{{job="{PROBE_JOB}"}}'
    scope = by()
    return [
        alert("DliExporterDown", f"sum by ({scope}) ({up}) == 0", "5m", "critical",
              "No DLI exporter can be scraped",
              f"Every target of the {EXPORTER_JOB} scrape job has been down for 5 minutes: no DLI job is watched. "
              "DLI alerts of this deployment are inhibited meanwhile.", project=False),
        alert("DliExporterReplicaDown", f"({up} == 0) and on ({scope}) (sum by ({scope}) ({up}) > 0)", "10m",
              "warning", "A DLI exporter replica is down",
              "The exporter at {{ $labels.instance }} has not been scraped for 10 minutes; other replicas still "
              "watch the jobs.", project=False),
        alert("DliExporterAbsent", f'absent(up{{job=~"{EXPORTER_JOB}|{PROBE_JOB}"}})', "10m", "critical",
              "No DLI exporter is scraped",
              f"Prometheus has had no target in the {EXPORTER_JOB} or {PROBE_JOB} scrape job for 10 minutes: "
              "check the scrape configuration (the job names) or service discovery.", project=False),
        alert("DliProbeFailed",
              f'label_replace({probe} == 0, "project_id", "$1", "instance", "(.+)")', "5m", "critical",
              "DLI project {{ $labels.project_id }} cannot be probed",
              "Prometheus has not been able to scrape /probe for project {{ $labels.project_id }} for 5 "
              "minutes (a 403 outside DLI_EXPORTER_PROBE_ALLOWED, a 400 for a malformed target or region, or an "
              "exporter that cannot be reached): none of its jobs is watched. Prometheus' targets page names the "
              "scrape error."),
        alert("DliCredentialRejected", f"max by ({by('credential')}) (max_over_time(dli_credential_held[5m])) == 1",
              "5m", "critical", "The API refuses a credential of the DLI exporter",
              "The API has refused credential {{ $labels.credential }} for 5 minutes (an authentication failure, "
              "and no call let through since): no project is read. The exporter holds it back (a try every 1 to "
              "5 minutes), so the gateway never locks it. Its projects' unreadable alerts are inhibited: this "
              "is their cause.", project=False),
        alert("DliApiThrottled", f'sum by ({scope}) (rate(dli_api_requests_total{{code="429"}}[10m])) * 60 > 0',
              "15m", "warning", "The DLI API throttles the exporter",
              "The API has answered 429 (APIGW.0308) for 15 minutes, {{ $value | printf \"%.1f\" }} calls a minute: "
              "the account's quota is spent, by this exporter or by other tools on the same account. Reads wait "
              "for the next window, so data is older than it looks.", project=False),
        alert("DliExporterWebConfigReloadFailed", "dli_exporter_web_config_last_reload_successful == 0", "5m",
              "warning", "A DLI exporter cannot load its web configuration",
              "The exporter at {{ $labels.instance }} failed to load DLI_EXPORTER_WEB_CONFIG_FILE for 5 minutes "
              "and serves with the last good one: a certificate renewal or a password change has not taken "
              "effect. Its log says why.", project=False),
        alert("DliDiscoveryFailing",
              f"(time() - max by ({scope}) (dli_discovery_last_success_timestamp_seconds) > 1800)\n"
              f"or (count by ({scope}) (dli_discovered_projects)"
              f" unless on ({scope}) dli_discovery_last_success_timestamp_seconds)",
              "10m", "warning", "The DLI exporter cannot look the account's projects up",
              "The account's projects have not been looked up from IAM for over 30 minutes (or never since the "
              "exporter started): projects added since are not read. The last list is still read. The log's "
              "\"project look-up failed\" lines name the error and the request id.", project=False),
        alert("DliProjectUnreadable",
              f"(time() - max by ({by('project_id')}) (dli_last_success_timestamp_seconds) > 600)\n"
              f"or\n(max by ({by('project_id')}) (max_over_time(dli_up[10m])) == 0\n"
              f"  unless on ({by('project_id')}) dli_last_success_timestamp_seconds)",
              "1m", "critical", "DLI project {{ $labels.project_id }} cannot be read",
              "No complete read of project {{ $labels.project_id }} for over 10 minutes, so its job alerts see "
              "nothing new (they keep their last state for 30 minutes, and are inhibited meanwhile). The exporter's "
              "log names the API error and the request id."),
        alert("DliProjectReadsFlapping", f"max by ({by('project_id')}) (avg_over_time(dli_up[30m])) < 0.8", "15m",
              "warning", "Reads of DLI project {{ $labels.project_id }} keep failing",
              "Only {{ $value | humanizePercentage }} of the reads of project {{ $labels.project_id }} succeeded in "
              "the last 30 minutes. Job alerts hold their last state across the gaps, but data is older than it "
              "looks."),
        alert("DliSweepNearScrapeTimeout",
              f"max by ({by('project_id')}) (dli_scrape_duration_seconds / on (job, instance) group_left () "
              f"dli_scrape_timeout_seconds) > 0.8", "15m", "warning",
              "Reading DLI project {{ $labels.project_id }} nears the scrape timeout",
              "Reading project {{ $labels.project_id }} takes {{ $value | humanizePercentage }} of the scrape "
              "timeout. A read takes about (1 + pages / DLI_EXPORTER_CONCURRENCY) API round trips: raise the scrape "
              "job's scrape_timeout (the exporter uses all of it), raise DLI_EXPORTER_CONCURRENCY (at most 10), or "
              "check dli_api_request_duration_seconds for a slow API. DLI_EXPORTER_CACHE_SECONDS does not shorten a "
              "read."),
        alert("DliDetailViewStale",
              f"(\n  (time() - max by ({by('project_id')}) ({DETAIL}) > 3600"
              f" and on ({by('project_id')}) max by ({by('project_id')}) ({DETAIL}) > 0)\n"
              f"  or max by ({by('project_id')}) ({DETAIL}) == 0\n)\n"
              f"and on ({by('project_id')}) (dli:up:max == 1)", "15m", "warning",
              "Run modes and job configuration of DLI project {{ $labels.project_id }} are stale",
              "The detail view of project {{ $labels.project_id }} (run_mode, job_config) "
              "{{ if eq $value 0.0 }}has never been read completely since the exporter started{{ else }}was last "
              "read completely {{ $value | humanizeDuration }} ago{{ end }}, though it is read every 10 minutes by "
              "default. Status, restarts and durations are current; run modes and job_config metrics are old, "
              "and new jobs have none. The exporter's log names the API error of the detail reads."),
        job_alert("DliJobRunningException", ("job_running_exception",), "5m", "critical",
                  "DLI jobs of project {{ $labels.project_id }} stopped on an exception",
                  "has been in job_running_exception for 5 minutes."),
        job_alert("DliJobSubmitFailed", ("job_submit_fail",), "5m", "warning",
                  "DLI jobs of project {{ $labels.project_id }} failed to submit",
                  "could not be submitted and is not running. Its owner resubmits it once the cause is fixed."),
        job_alert("DliJobCancelFailed", ("job_cancel_fail",), "5m", "warning",
                  "DLI jobs of project {{ $labels.project_id }} could not be stopped",
                  "could not be cancelled: it may still run and use its CUs. Its owner stops it again from the "
                  "console (with or without a savepoint)."),
        job_alert("DliJobStuck", STUCK, "30m", "warning",
                  "DLI jobs of project {{ $labels.project_id }} are stuck in a transition",
                  "has been in a transition for 30 minutes (job_submitting, job_init, job_canceling or "
                  "job_savepointing: statuses DLI passes through in seconds to minutes), now {{ $status }}."),
        alert("DliJobRestarting",
              f"(round(dli:job_restarts:increase30m) >= 3)\n"
              f"* on ({by('project_id', 'job_id')}) group_left ({JOB_LABELS}) dli:job_info:one", "5m", "warning",
              "DLI jobs of project {{ $labels.project_id }} keep restarting",
              f"{JOB} restarted {{{{ $value | printf \"%.0f\" }}}} times in 30 minutes."),
        alert("DliRunningJobGone",
              f"(\n  max by ({by('project_id', 'job_id')}) (\n"
              f"    dli:job_status:max{{status=\"job_running\"}} offset 10m\n"
              f"    unless on ({by('project_id', 'job_id')}) dli:job_status:max\n  )\n"
              f"  and on ({by('project_id')}) (dli:up:max == 1)\n)\n"
              f"* on ({by('project_id', 'job_id')}) group_left ({JOB_LABELS}) (dli:job_info:one offset 10m)",
              "0m", "warning", "Running DLI jobs of project {{ $labels.project_id }} are gone",
              f"{JOB} was running 10 minutes ago and is no longer listed, though the project is read: it was "
              "deleted, or its owner can no longer be seen by the exporter's user.", keep_firing_for="30m"),
        alert("DliRunningJobsDropped",
              f"(dli:jobs_running:sum < 0.5 * dli:jobs_running:sum offset 30m)\n"
              f"and on ({by('project_id')}) (dli:jobs_running:sum offset 30m >= 4)\n"
              f"and on ({by('project_id')}) (dli:up:max == 1)", "10m", "warning",
              "Fewer DLI jobs of project {{ $labels.project_id }} run",
              "{{ $value | printf \"%.0f\" }} Flink jobs of project {{ $labels.project_id }} run, under half as many "
              "as 30 minutes before, and the project is read: jobs stopped, failed or were deleted. The dashboard's "
              "Jobs by status panel shows where they went."),
        alert("DliProjectArrears",
              f'(sum by ({by("project_id")}) (dli:jobs:max{{status="job_arrearage_stopped"}}) > 0)\n'
              f'or\n(sum by ({by("project_id")}) (last_over_time(dli:jobs:max{{status="job_arrearage_stopped"}}'
              f'[{BRIDGE}])) > 0\n  unless on ({by("project_id")}) (dli:up:max == 1))', "5m", "critical",
              "DLI project {{ $labels.project_id }}: jobs stopped, the account is in arrears",
              "{{ $value | printf \"%.0f\" }} Flink jobs of project {{ $labels.project_id }} were stopped because "
              "the account is in arrears. Top up the account; DLI then restores them (job_arrearage_recovering)."),
        alert("DliQueueJobsRunningException",
              f'(sum by ({by("project_id", "queue")}) (dli:jobs:max{{status="job_running_exception"}}) > 0)\n'
              f"unless on ({by('project_id')}) dli:job_info:one", "5m", "critical",
              "DLI jobs of project {{ $labels.project_id }} stopped on an exception",
              "{{ $value | printf \"%.0f\" }} Flink jobs in queue {{ $labels.queue }} have been in "
              "job_running_exception for 5 minutes. Per-job series are off (DLI_EXPORTER_PER_JOB_METRICS=false), so "
              "this counts them per queue; the DLI console names them."),
        alert("DliQueueFull",
              f"(dli:queue_asked_cus:sum >= on ({by('project_id', 'queue')}) "
              f"max by ({by('project_id', 'queue')}) (dli_queue_compute_units))\n"
              f"and on ({by('project_id', 'queue')})\n"
              f"count by ({by('project_id', 'queue')}) (\n"
              f'  dli:job_status:max{{status=~"job_submitting|job_init"}}\n'
              f"  * on ({by('project_id', 'job_id')}) group_left (queue) dli:job_info:one\n)", "15m", "warning",
              "DLI queues of project {{ $labels.project_id }} are full and jobs wait for them",
              "The running jobs of queue {{ $labels.queue }} ask {{ $value | printf \"%.0f\" }} CUs, all the queue "
              "has, and jobs have waited 15 minutes to start on it (job_submitting or job_init). They start when "
              "CUs are freed or the queue is scaled out."),
    ]


def groups() -> list[dict[str, Any]]:
    """The rule groups: the records, then the alerts (which read the records' latest samples: a
    group's rules run in order, groups side by side)."""
    return [{"name": "dli-exporter.records", "rules": records()}, {"name": "dli-exporter", "rules": alerts()}]
