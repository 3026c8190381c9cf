"""The exporter's own counters and histograms: API calls, their latency, retries, IAM logins, and
whether the web configuration file last loaded.

These are prometheus-client's own ``Counter``, ``Histogram`` and ``Gauge``, on a registry of
their own (as node_exporter keeps its self-metrics apart from what it exports), declared from the
catalog's specs so that name, help and labels stay in one place. They are thread-safe and kept
between scrapes; each scrape reads them as families, in the catalog's order, without the
``_created`` samples our exposition has never had.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .catalog import LATENCY_BUCKETS, SPECS
from .families import Family, from_client_metric


def _labels(name: str) -> list[str]:
    return list(SPECS[name].labels)


class ApiStats:
    """Counts what the DLI side does. ``observe``, ``retried`` and ``logged_in`` are called from any
    thread; ``families`` gives the scrape's view."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter("dli_api_requests_total", SPECS["dli_api_requests_total"].help,
                                 _labels("dli_api_requests_total"), registry=self.registry)
        self._latency = Histogram("dli_api_request_duration_seconds", SPECS["dli_api_request_duration_seconds"].help,
                                  _labels("dli_api_request_duration_seconds"), buckets=LATENCY_BUCKETS,
                                  registry=self.registry)
        self._retries = Counter("dli_api_retries_total", SPECS["dli_api_retries_total"].help,
                                _labels("dli_api_retries_total"), registry=self.registry)
        self._logins = Counter("dli_iam_logins_total", SPECS["dli_iam_logins_total"].help,
                               _labels("dli_iam_logins_total"), registry=self.registry)
        self._left_out = Counter("dli_api_field_errors_total", SPECS["dli_api_field_errors_total"].help,
                                 _labels("dli_api_field_errors_total"), registry=self.registry)
        self._web_config: Gauge | None = None

    def observe(self, account: str, code: str, seconds: float) -> None:
        """One API call for project ``account``, answered with ``code`` (the HTTP status, or
        ``error``) after ``seconds``."""
        self._requests.labels(account, code).inc()
        self._latency.labels(account).observe(seconds)

    def retried(self, account: str) -> None:
        self._retries.labels(account).inc()

    def logged_in(self, account: str, code: str) -> None:
        self._logins.labels(account, code).inc()

    def left_out(self, account: str, field: str, count: int) -> None:
        self._left_out.labels(account, field).inc(count)

    def web_config_loaded(self, ok: bool) -> None:
        """The web configuration file was (re)loaded, or failed to. Its gauge exists from the first call."""
        if self._web_config is None:
            name = "dli_exporter_web_config_last_reload_successful"
            self._web_config = Gauge(name, SPECS[name].help, registry=self.registry)
        self._web_config.set(1 if ok else 0)

    def forget(self, project_id: str) -> None:
        """Drop the counters of a project that has gone unused (a probed target): their label sets
        would otherwise grow with every project ever probed."""
        metrics: list[tuple[Counter | Histogram, str]] = [
            (self._requests, "dli_api_requests_total"), (self._latency, "dli_api_request_duration_seconds"),
            (self._retries, "dli_api_retries_total"), (self._logins, "dli_iam_logins_total"),
            (self._left_out, "dli_api_field_errors_total")]
        for metric, name in metrics:
            names = SPECS[name].labels  # a histogram's samples add "le": take the metric's own labels
            for labels in {tuple(s.labels.get(n, "") for n in names) for family in metric.collect()
                           for s in family.samples if s.labels.get("project_id") == project_id}:
                metric.remove(*labels)

    def families(self) -> list[Family]:
        return [from_client_metric(metric) for metric in self.registry.collect()]

    # Plain views of the counters, for tests and tools: {labels: count}.

    def _counts(self, counter: Counter) -> dict[tuple[str, ...], int]:
        out = {}
        for metric in counter.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    out[tuple(sample.labels.values())] = int(sample.value)
        return out

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        return {(k[0], k[1]): v for k, v in self._counts(self._requests).items()}

    @property
    def retries(self) -> dict[str, int]:
        return {k[0]: v for k, v in self._counts(self._retries).items()}

    @property
    def logins(self) -> dict[tuple[str, str], int]:
        return {(k[0], k[1]): v for k, v in self._counts(self._logins).items()}

