"""Every metric the exporter exposes, in the order it exposes them: each registered resource's
table, then what every project and resource has (its info, whether each resource was read), the
exporter's own counters, and the exporter-wide series.

The mapping, the renderer, the self-metrics, the README's table and the contract tests all read
:data:`METRICS`; a metric is declared once, here or in its resource's table.
"""

from __future__ import annotations

from .resources import REGISTERED
from .series import PROJECT_ID, MetricSpec

# Of every project, whatever the resources.
PROJECT: tuple[MetricSpec, ...] = (
    MetricSpec("dli_project_info", "gauge",
               "A project the exporter reads: its region, its IAM name where known, and how the exporter knows it "
               "(configured, discovered, probe); always 1.", (PROJECT_ID, "region", "name", "source")),
    MetricSpec("dli_resource_up", "gauge",
               "1 if the last read of that resource of the project succeeded, else 0; dli_up is the jobs' read.",
               (PROJECT_ID, "resource")),
    MetricSpec("dli_resource_last_success_timestamp_seconds", "gauge",
               "When that resource of the project was last read completely.", (PROJECT_ID, "resource")),
)
# The exporter's own counters, kept between scrapes (exporter.selfmetrics).
SELF: tuple[MetricSpec, ...] = (
    MetricSpec("dli_api_requests_total", "counter",
               "DLI API calls made, by HTTP status ('error' when no response came).", (PROJECT_ID, "code")),
    MetricSpec("dli_api_request_duration_seconds", "histogram", "Latency of DLI API calls, in seconds.", (PROJECT_ID,)),
    MetricSpec("dli_api_retries_total", "counter", "DLI API calls retried after an error.", (PROJECT_ID,)),
    MetricSpec("dli_iam_logins_total", "counter",
               "IAM password logins, by HTTP status ('error' when no response came).", (PROJECT_ID, "code")),
    MetricSpec("dli_api_field_errors_total", "counter",
               "Fields of jobs or queues that could not be read and were left out; the rest of the record was read.",
               (PROJECT_ID, "field")),
)
# Of the scrape and the exporter as a whole (on /metrics only, not on each /probe).
SCRAPE = MetricSpec(
    "dli_scrape_timeout_seconds", "gauge",
    "Time a scrape may take: Prometheus' X-Prometheus-Scrape-Timeout-Seconds, else the configured default.", ())
EXPORTER: tuple[MetricSpec, ...] = (
    MetricSpec("dli_sweeps_total", "counter", "Sweeps of all projects started by scrapes.", ()),
    MetricSpec("dli_cache_hits_total", "counter", "Scrapes answered from a cached or already running sweep.", ()),
    MetricSpec("dli_targets", "gauge",
               "Projects the exporter keeps state for: the configured ones, and those probed within "
               "DLI_EXPORTER_PROBE_IDLE_SECONDS.", ()),
    MetricSpec("dli_exporter_build_info", "gauge", "Build information of dli-exporter; always 1.", ("version",)),
    MetricSpec("dli_credential_held", "gauge",
               "1 while the API refuses the credential (an authentication failure, and no call let through since): "
               "its calls are held back, a try every 1 to 5 minutes; else 0. credential: an access key's first "
               "characters, or domain/user.", ("credential",)),
)
# The project look-up (with discovery on; on /metrics only).
DISCOVERY: tuple[MetricSpec, ...] = (
    MetricSpec("dli_discovered_projects", "gauge",
               "Projects the last look-up found to read, by state: readable, or unreadable (their job list is "
               "refused with 403; tried again at the next look-up).", ("state",)),
    MetricSpec("dli_discovery_last_success_timestamp_seconds", "gauge",
               "When the account's projects were last looked up successfully.", ()),
)
WEB_CONFIG = MetricSpec(
    "dli_exporter_web_config_last_reload_successful", "gauge",
    "1 if the last load of the web configuration file succeeded, else 0 (only with a web config file).", ())

METRICS: tuple[MetricSpec, ...] = (
    *(spec for resource in REGISTERED for spec in resource.table.specs),
    *PROJECT, *SELF, SCRAPE, *EXPORTER, *DISCOVERY, WEB_CONFIG,
)
SPECS = {spec.name: spec for spec in METRICS}
ORDER = {spec.name: index for index, spec in enumerate(METRICS)}  # families are exposed in table order
if len(SPECS) != len(METRICS):
    raise ValueError("a metric is declared twice")

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
