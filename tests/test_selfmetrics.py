"""The exporter's own counters and histograms, on prometheus-client's metrics."""

from __future__ import annotations

from exporter.catalog import LATENCY_BUCKETS
from exporter.families import Family
from exporter.render import format_value
from exporter.selfmetrics import ApiStats


def family(stats: ApiStats, name: str) -> Family:
    [found] = [f for f in stats.families() if f.name == name]
    return found


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket() -> None:
    """Buckets are "less than or equal": a call of exactly 0.05 s is in le="0.05"."""
    stats = ApiStats()
    for bound in LATENCY_BUCKETS:
        stats.observe("p1", "200", bound)
    buckets = {values[1]: value for name, _, values, value in family(stats, "dli_api_request_duration_seconds").samples
               if name.endswith("_bucket")}
    for index, bound in enumerate(LATENCY_BUCKETS):
        assert buckets[format_value(bound)] == index + 1, bound
    assert buckets["+Inf"] == len(LATENCY_BUCKETS)


def test_counters_by_label_and_no_created_samples() -> None:
    stats = ApiStats()
    stats.observe("p2", "500", 0.3)
    stats.observe("p1", "200", 0.1)
    stats.observe("p1", "200", 0.2)
    stats.retried("p2")
    stats.logged_in("p1", "201")
    assert stats.requests == {("p2", "500"): 1, ("p1", "200"): 2}
    assert stats.retries == {"p2": 1} and stats.logins == {("p1", "201"): 1}
    requests = family(stats, "dli_api_requests_total").samples
    assert [(values, value) for _, _, values, value in requests] == [(("p1", "200"), 2.0), (("p2", "500"), 1.0)]
    assert not any(s[0].endswith("_created") for f in stats.families() for s in f.samples)


def test_the_web_config_gauge_exists_only_once_a_file_was_loaded() -> None:
    stats = ApiStats()
    name = "dli_exporter_web_config_last_reload_successful"
    assert name not in {f.name for f in stats.families()}
    stats.web_config_loaded(True)
    assert [s[3] for s in family(stats, name).samples] == [1.0]
    stats.web_config_loaded(False)
    assert [s[3] for s in family(stats, name).samples] == [0.0]
