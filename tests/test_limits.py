"""Bounded API answers: a response larger than DLI_EXPORTER_MAX_RESPONSE_BYTES is refused as it
arrives (declared or not, compressed or not), the project goes down with a clear error, the
connection is dropped, and the next good answer brings the project back. Label values are capped
by one rule (schema.MAX_LABEL_CHARS)."""

from __future__ import annotations

import re
import subprocess
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest
import requests

from exporter.dli.errors import Failure, Outcome
from exporter.dli.schema import MAX_LABEL_CHARS
from exporter.selfmetrics import ApiStats
from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Simulator
from exporter.wiring import build_api
from tests.benchmarks.bench import peak_rss_mb
from tests.helpers import (
    COMMAND,
    clean_environ,
    fetch_first_page,
    free_port,
    jobs,
    parsed,
    running_exporter,
    scrape,
    settings_for,
    wait_healthy,
)

MB = 1024 * 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_over_the_cap_is_refused_unread_and_the_connection_dropped(chunked: bool) -> None:
    with Simulator({"p1": jobs(3)}) as sim:
        sim.add_fault(Fault("oversize", size=64 * MB, chunked=chunked, times=1))
        settings = settings_for(sim, max_response_bytes=MB, retries=3, show_detail=False)
        stats = ApiStats()
        api = build_api(settings, stats)
        try:
            err = fetch_first_page(api, sim.url)
            page = fetch_first_page(api, sim.url)  # the next good answer is read as usual
        finally:
            api.close()
        calls = sim.recorded()
    assert isinstance(err, Failure) and err.outcome is Outcome.FATAL and err.status == 200
    assert "larger than 1048576 bytes (DLI_EXPORTER_MAX_RESPONSE_BYTES)" in str(err)
    assert not isinstance(page, Failure) and len(page.records) == 3
    # Not retried (the next answer would be as large), counted under its status, and the refused
    # answer's connection was not reused: the good one came on a new one.
    assert len(calls) == 2 and calls[0].peer != calls[1].peer
    assert stats.requests == {("p1", "200"): 2}


def _gzip_bomb(inflated: int) -> bytes:
    """A gzip body of a page that inflates to ``inflated`` bytes, made without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"is_success":true,"jobs":[{"job_id":1,"name":"')]
    piece = b"x" * MB
    parts += [packer.compress(piece) for _ in range(inflated // MB)]
    parts += [packer.compress(b'"}]}'), packer.flush()]
    return b"".join(parts)


class _GzipBomb(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_the_cap_counts_decompressed_bytes() -> None:
    """A gzip answer of a few hundred KB that inflates to 200 MB is refused at the cap."""
    _GzipBomb.body = _gzip_bomb(200 * MB)
    assert len(_GzipBomb.body) < MB
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GzipBomb)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Simulator({"p1": jobs(1)}) as sim:
            settings = settings_for(sim, max_response_bytes=4 * MB, show_detail=False)
        api = build_api(settings, ApiStats())
        try:
            refused = fetch_first_page(api, f"http://127.0.0.1:{server.server_port}")
            assert isinstance(refused, Failure) and "larger than 4194304 bytes" in str(refused)
        finally:
            api.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_project_goes_down_and_comes_back_and_others_are_unaffected() -> None:
    with Simulator({"p1": jobs(3), "p2": jobs(2, start=10)}) as sim:
        sim.add_fault(Fault("oversize", project_id="p1", size=32 * MB, times=1))
        with running_exporter(settings_for(sim, max_response_bytes=MB, cache_seconds=0, show_detail=False)) as exp:
            first, second = scrape(exp, timeout=10), scrape(exp, timeout=10)
    assert first.up("p1") == 0 and first.up("p2") == 1
    assert second.up("p1") == 1


@pytest.mark.slow
def test_a_150_mb_answer_leaves_peak_rss_under_120_mb() -> None:
    """The issue's measure, on the exporter as users run it (its own process, default settings):
    a 150 MB answer streamed without a length takes the project down, peak RSS stays under
    120 MB, and the next good answer brings the project back."""
    with Simulator({"p1": jobs(50)}) as sim:
        sim.add_fault(Fault("oversize", size=150 * MB, chunked=True, times=1))
        port = free_port()
        env = clean_environ({"HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK,
                             "DLI_EXPORTER_ENDPOINT": sim.url, "DLI_EXPORTER_PROJECT_IDS": "p1",
                             "DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "DLI_EXPORTER_CACHE_SECONDS": "0",
                             "DLI_EXPORTER_SHOW_DETAIL": "false"})
        proc = subprocess.Popen([COMMAND], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            wait_healthy(port)
            down = requests.get(url, timeout=30).text
            up = requests.get(url, timeout=30).text
            peak = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=10)
    assert 'dli_up{project_id="p1"} 0.0' in down and 'dli_up{project_id="p1"} 1.0' in up
    assert peak < 120, f"peak RSS {peak:.1f} MB"
    assert re.search(r"larger than 16777216 bytes \(DLI_EXPORTER_MAX_RESPONSE_BYTES\)", stderr), stderr
    print(f"peak RSS with a 150 MB answer: {peak:.1f} MB")


def test_label_values_are_capped_by_one_rule() -> None:
    long = "n" * 10_000
    raw = {"job_id": 1, "name": long, "status": "s" * 300, "job_type": "flink_sql_job", "queue_name": "q" * 257,
           "run_mode": "shared_cluster", "user_name": "u" * 256, "sql_body": "SELECT 1;" * 100_000}
    job = parsed(raw)
    assert len(job.name) == MAX_LABEL_CHARS and job.name == "n" * (MAX_LABEL_CHARS - 1) + "\u2026"
    assert len(job.status) == len(job.queue) == MAX_LABEL_CHARS and job.status.endswith("\u2026")
    assert job.user_name == "u" * 256 and job.job_type == "flink_sql_job"  # at the limit: as it is
    documented = parsed({"job_id": 2, "name": "j" * 57, "queue_name": "q" * 128})
    assert (documented.name, documented.queue) == ("j" * 57, "q" * 128)  # the API's own limits are far below
