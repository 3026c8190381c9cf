"""The HTTP server over real sockets: /metrics, negotiation, deadlines, /healthz, the landing page."""

from __future__ import annotations

import gzip
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from exporter.domain import MAX_SCRAPE_TIMEOUT
from exporter.simulator import Fault, Simulator
from exporter.web.app import scrape_deadline
from exporter.wiring import Exporter
from tests.helpers import jobs, scrape

Start = Callable[..., Exporter]


def test_metrics_over_http(sim: Simulator, exporter_for: Start,
                           promtool: Callable[[bytes], subprocess.CompletedProcess[bytes]]) -> None:
    exporter = exporter_for(sim)
    resp = scrape(exporter)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert resp.up("p1") == 1 and resp.up("p2") == 1
    assert resp.text.count("dli_job_info{") == 5
    assert resp.value("dli_resource_up", project_id="p1", resource="queues") == 1
    checked = promtool(resp.text.encode())
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
    assert resp.status == 200
    assert resp.up("p1") == 1 and resp.up("p2") == 0
    assert resp.jobs_of("p1") and not resp.jobs_of("p2")
    assert resp.value("dli_resource_up", project_id="p2", resource="queues") == 1  # the jobs' fault only
    sim.clear_faults()
    resp = scrape(exporter)
    assert resp.up("p2") == 1 and resp.jobs_of("p2")


def test_a_deleted_job_vanishes(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim)
    assert 'job_id="3"' in scrape(exporter).text
    sim.set_jobs("p1", jobs(2))
    assert 'job_id="3"' not in scrape(exporter).text


def test_scrape_answers_within_prometheus_timeout_when_the_api_hangs(sim: Simulator, exporter_for: Start) -> None:
    sim.add_fault(Fault("hang", project_id="p2", seconds=10))
    exporter = exporter_for(sim, request_timeout_seconds=30)
    resp = scrape(exporter, timeout=2)
    assert resp.status == 200 and resp.seconds < 2
    assert resp.up("p1") == 1 and resp.up("p2") == 0 and not resp.jobs_of("p2")


@pytest.mark.parametrize("header", ["inf", "-inf", "nan", "Infinity", "1e999"])
def test_a_scrape_with_a_timeout_that_is_no_number_still_has_a_deadline(exporter_for: Start, header: str) -> None:
    """An infinite or NaN scrape timeout is not taken as "no deadline": the configured one applies."""
    with Simulator({"p1": jobs(3)}) as sim:
        sim.add_fault(Fault("hang", seconds=20))
        exporter = exporter_for(sim, request_timeout_seconds=60, scrape_timeout_seconds=1.5)
        resp = scrape(exporter, timeout=None, headers={"X-Prometheus-Scrape-Timeout-Seconds": header})
    assert resp.status == 200 and resp.seconds < 2.5
    assert resp.up("p1") == 0 and resp.value("dli_scrape_timeout_seconds") == 1.5


def test_concurrent_scrapes_cost_one_sweep(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(300)}, latency=0.1) as slow:
        exporter = exporter_for(slow, show_detail=False)  # one view: this counts sweeps
        bodies: list[float | None] = []

        def one() -> None:
            bodies.append(scrape(exporter, timeout=10).up("p1"))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(slow.recorded("/v1.0/p1/streaming")) == 3 and len(slow.recorded("/v1.0/p1/queues")) == 1
    assert bodies == [1.0] * 4


@pytest.mark.parametrize(("header", "default", "timeout", "budget"), [
    (None, 10.0, 10.0, 9.5), ("20", 10.0, 20.0, 19.5), ("1", 10.0, 1.0, 0.8), ("junk", 10.0, 10.0, 9.5),
    ("-3", 10.0, 10.0, 9.5), ("nan", 4.0, 4.0, 3.5), ("0.5", 10.0, 0.5, 0.4), ("inf", 4.0, 4.0, 3.5),
    ("-inf", 4.0, 4.0, 3.5), ("1e308", 4.0, MAX_SCRAPE_TIMEOUT, MAX_SCRAPE_TIMEOUT - 0.5),
])
def test_the_scrape_deadline(header: Any, default: float, timeout: float, budget: float) -> None:
    """One deadline per scrape, from the header (a positive finite number, at most
    MAX_SCRAPE_TIMEOUT) or the default, less a margin for rendering."""
    deadline = scrape_deadline(header, default, clock=lambda: 100.0)
    assert deadline.timeout == timeout and deadline.at - 100.0 == pytest.approx(budget)


def test_the_scrape_timeout_is_exported(sim: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(sim, scrape_timeout_seconds=7)
    assert scrape(exporter, timeout=None).value("dli_scrape_timeout_seconds") == 7
    assert scrape(exporter, timeout=15).value("dli_scrape_timeout_seconds") == 15


def test_a_bug_answers_500_and_logs_one_event(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.discovery import Discovery
    from exporter.web.app import MetricsApp

    class Broken:
        def families(self, *args: Any, **kwargs: Any) -> list[Any]:
            raise RuntimeError("bug\nin collector")

    app = MetricsApp(Broken(), Discovery((), enabled=False), 10.0)  # type: ignore[arg-type]
    answer: list[str] = []
    body = app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, lambda status, _headers: answer.append(status))
    assert answer == ["500 Internal Server Error"] and b"".join(body) == b"internal error\n"
    [record] = [r for r in caplog.records if r.name == "exporter.web.app"]
    assert record.levelname == "ERROR" and "RuntimeError: bug" in record.__dict__["error"]


def test_a_content_type_we_cannot_read_is_answered_as_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a later prometheus-client negotiate a format we do not know, the answer is the
    0.0.4 text format, which every Prometheus reads: there is one rendering path, and it is ours."""
    from exporter import render

    monkeypatch.setattr(render, "choose_encoder", lambda accept: (None, "application/x-future; version=9"))
    assert render.negotiate("application/x-future") == render.PLAIN_TEXT
