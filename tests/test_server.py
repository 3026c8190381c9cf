"""The HTTP server over real sockets: /metrics, negotiation, deadlines, /healthz, the landing page."""

from __future__ import annotations

import gzip
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.wiring import Exporter
from exporter.simulator import Fault, Simulator
from exporter.web.app import scrape_budget, scrape_timeout
from tests.helpers import jobs

Start = Callable[..., Exporter]


def scrape(exporter: Exporter, **headers: str) -> requests.Response:
    return requests.get(exporter.url + "/metrics", headers=headers, timeout=30)


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def up(text: str, project: str) -> float:
    return values(text)[("dli_up", frozenset({("project_id", project)}))]


def job_series(text: str, project: str) -> int:
    return sum(1 for name, labels in values(text) if name.startswith("dli_job") and ("project_id", project) in labels)


def test_metrics_over_http(sim: Simulator, exporter_for: Start,
                           promtool: Callable[[bytes], subprocess.CompletedProcess[bytes]]) -> None:
    exporter = exporter_for(sim)
    resp = scrape(exporter)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert up(resp.text, "p1") == 1 and up(resp.text, "p2") == 1
    assert resp.text.count("dli_job_info{") == 5
    checked = promtool(resp.content)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_openmetrics_and_gzip(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim)
    resp = requests.get(exporter.url + "/metrics", timeout=30, stream=True, headers={
        "Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "gzip"})
    raw = resp.raw.read()
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    body = gzip.decompress(raw).decode()
    assert body.endswith("# EOF\n") and "dli_job_restarts_total{" in body


def test_healthz_makes_no_api_call(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim)
    resp = requests.get(exporter.url + "/healthz", timeout=5)
    assert (resp.status_code, resp.text) == (200, "ok\n")
    assert sim.recorded() == []


def test_landing_page_and_unknown_paths(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim)
    page = requests.get(exporter.url + "/", timeout=5)
    assert page.status_code == 200 and 'href="metrics"' in page.text and 'href="healthz"' in page.text
    assert requests.get(exporter.url + "/nope", timeout=5).status_code == 404
    assert requests.post(exporter.url + "/metrics", timeout=5).status_code == 405
    assert sim.recorded() == []


def test_a_failing_project_is_down_and_the_rest_is_served(sim: Simulator, exporter_for: Start) -> None:
    sim.add_fault(Fault("error", project_id="p2", status=500))
    exporter = exporter_for(sim, retries=0)
    resp = scrape(exporter)
    assert resp.status_code == 200
    assert up(resp.text, "p1") == 1 and up(resp.text, "p2") == 0
    assert job_series(resp.text, "p1") > 0 and job_series(resp.text, "p2") == 0
    assert 'dli_jobs{job_type="flink_sql_job",project_id="p2"' not in resp.text
    sim.clear_faults()
    resp = scrape(exporter)
    assert up(resp.text, "p2") == 1 and job_series(resp.text, "p2") > 0


def test_a_deleted_job_vanishes(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim)
    assert 'job_id="3"' in scrape(exporter).text
    sim.set_jobs("p1", jobs(2))
    assert 'job_id="3"' not in scrape(exporter).text


def test_scrape_answers_within_prometheus_timeout_when_the_api_hangs(sim: Simulator, exporter_for: Start) -> None:
    sim.add_fault(Fault("hang", project_id="p2", seconds=10))
    exporter = exporter_for(sim, request_timeout_seconds=30)
    started = time.monotonic()
    resp = scrape(exporter, **{"X-Prometheus-Scrape-Timeout-Seconds": "2"})
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and elapsed < 2
    assert up(resp.text, "p1") == 1 and up(resp.text, "p2") == 0 and job_series(resp.text, "p2") == 0


def test_concurrent_scrapes_cost_one_sweep(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(300)}, latency=0.1) as slow:
        exporter = exporter_for(slow, show_detail=False)  # one view: this counts sweeps
        bodies: list[str] = []

        def one() -> None:
            bodies.append(scrape(exporter).text)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(slow.recorded()) == 3
    assert len(bodies) == 4 and all(up(b, "p1") == 1 for b in bodies)


@pytest.mark.parametrize(("header", "default", "expected"), [
    (None, 10.0, 9.5), ("20", 10.0, 19.5), ("1", 10.0, 0.8), ("junk", 10.0, 9.5), ("-3", 10.0, 9.5),
    ("nan", 4.0, 3.5), ("0.5", 10.0, 0.4),
])
def test_scrape_budget(header: Any, default: float, expected: float) -> None:
    assert scrape_budget(scrape_timeout(header, default)) == pytest.approx(expected)


def test_the_scrape_timeout_is_exported(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim, scrape_timeout_seconds=7)
    assert "dli_scrape_timeout_seconds 7.0" in scrape(exporter).text
    assert "dli_scrape_timeout_seconds 15.0" in scrape(exporter, **{"X-Prometheus-Scrape-Timeout-Seconds": "15"}).text


def test_a_bug_answers_500_and_logs_one_event(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.web.app import MetricsApp

    class Broken:
        def fast_families(self, _fmt: Any, _scrape: Any = None, _escaping: str = "") -> list[Any]:
            raise RuntimeError("bug\nin collector")

        def families(self, _scrape: Any = None) -> list[Any]:
            raise RuntimeError("bug\nin collector")

    app = MetricsApp(Broken(), 10.0)
    answer: list[str] = []
    body = app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, lambda status, _headers: answer.append(status))
    assert answer == ["500 Internal Server Error"] and b"".join(body) == b"internal error\n"
    [record] = [r for r in caplog.records if r.name == "exporter.web.app"]
    assert record.levelname == "ERROR" and "RuntimeError: bug" in record.__dict__["error"]


def test_a_format_without_a_fast_path_is_encoded_by_prometheus_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should prometheus-client negotiate a format we cannot render, its own encoder answers."""
    from prometheus_client.exposition import generate_latest

    from exporter.collector import DliCollector
    from exporter.web import app as app_module
    from tests.test_collector import GOLDEN_REGIONS, FixedSource, golden_snapshot, golden_stats, registry_for

    real = app_module.negotiate
    monkeypatch.setattr(app_module, "negotiate", lambda accept: (None, *real(accept)[1:]))
    collector = DliCollector(FixedSource(golden_snapshot()), golden_stats(), ["p1", "p2", "p3"], show_detail=True,
                             regions=GOLDEN_REGIONS)
    status: list[str] = []
    body = b"".join(app_module.MetricsApp(collector, 10.0)({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"},
                                                          lambda s, _h: status.append(s)))
    assert status == ["200 OK"] and body == generate_latest(registry_for(golden_snapshot()))
