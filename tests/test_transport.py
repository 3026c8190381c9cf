"""The transport alone: the one classification, Retry-After, and deadlines that bound every call."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from email.utils import formatdate
from typing import Any

import pytest
import requests
import trustme
import urllib3

from exporter.dli.errors import Failure, Outcome, classify, retry_after_seconds
from exporter.dli.schema import PayloadError
from exporter.dli.transport import THROTTLE_WINDOW, _json_or_none, describe_connection_error
from exporter.domain import Deadline
from exporter.resources import jobs as jobs_resource
from exporter.resources.jobs.record import parse_page
from exporter.selfmetrics import ApiStats
from exporter.simulator import Fault, Gateway, Simulator
from exporter.wiring import build_api
from tests.helpers import fetch_first_page, free_port, jobs, running_exporter, scrape, settings_for


@pytest.mark.parametrize(("status", "code", "decoded", "parsed", "outcome"), [
    (200, "", True, True, Outcome.OK),
    (None, "", True, True, Outcome.RETRY),  # no answer
    (200, "", False, False, Outcome.RETRY),  # cut short: not JSON
    (200, "", True, False, Outcome.FATAL),  # JSON, but not what was asked for
    (200, "DLI.0999", True, False, Outcome.RETRY),  # is_success false, DLI's own hiccup
    (200, "DLI.0001", True, False, Outcome.FATAL),
    (400, "DLI.0999", True, True, Outcome.RETRY),  # DLI.0999 comes with HTTP 400
    (400, "DLI.0001", True, True, Outcome.FATAL),
    (401, "APIGW.0301", True, True, Outcome.AUTH),
    (400, "DLI.0015", True, True, Outcome.AUTH),  # a token DLI cannot parse: HTTP 400, yet a refused credential
    (403, "", True, True, Outcome.DENIED),  # a permission, not the key: no hold
    (404, "DLI.0023", True, True, Outcome.FATAL),
    (429, "APIGW.0308", True, True, Outcome.RETRY),
    (500, "", False, False, Outcome.RETRY),
    (503, "APIGW.0201", True, True, Outcome.RETRY),
    (307, "", False, False, Outcome.FATAL),  # redirects are never followed
    (201, "", True, True, Outcome.FATAL),  # the list API answers 200, nothing else
])
def test_classify(status: int | None, code: str, decoded: bool, parsed: bool, outcome: Outcome) -> None:
    assert classify(status, code, decoded=decoded, parsed=parsed) is outcome


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = 1_764_000_000.0
    assert retry_after_seconds("2.5", now) == 2.5
    assert retry_after_seconds("-3", now) == 0.0
    assert retry_after_seconds(formatdate(now + 7, usegmt=True), now) == pytest.approx(7.0)
    assert retry_after_seconds(formatdate(now - 60, usegmt=True), now) == 0.0  # already past
    assert retry_after_seconds(None, now) is None and retry_after_seconds("", now) is None
    assert retry_after_seconds("soon", now) is None


def test_a_retry_after_date_is_waited_for() -> None:
    """Over HTTP: a 429 whose Retry-After is a date a second ahead is retried after that second."""
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("rate_limit", times=1, retry_after_header=formatdate(time.time() + 1.5, usegmt=True)))
        with running_exporter(settings_for(sim, show_detail=False)) as exporter:
            got = scrape(exporter, timeout=5)
        times = [r.at for r in sim.recorded("/v1.0/p1/streaming/jobs")]
    assert got.up("p1") == 1
    # The date has whole seconds: at least half a second, and no 0-second retry in the same window.
    assert len(times) == 2 and times[1] - times[0] >= 0.5


def test_a_hung_call_ends_at_the_deadline_and_frees_its_worker() -> None:
    """A call's timeout is what is left of the scrape, not the configured request timeout: the
    hung call gives its page worker back at the deadline, so the next scrape reads in time."""
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("hang", times=1, seconds=6))
        with running_exporter(settings_for(sim, concurrency=1, request_timeout_seconds=60)) as exporter:
            first = scrape(exporter, timeout=1)
            second = scrape(exporter, timeout=1)
    assert first.up("p1") == 0
    assert second.up("p1") == 1 and second.seconds < 1


def test_answers_decode_as_json_reads_them_whatever_orjson_refuses() -> None:
    """orjson decodes; what it refuses and json reads (lone surrogates, NaN, integers past 64
    bits) json reads, so an answer means the same either way; what neither reads is None."""
    assert _json_or_none(b'{"a": [1, "x", true, null, 1.5]}') == {"a": [1, "x", True, None, 1.5]}
    assert _json_or_none(b'{"name": "\\ud800"}') == {"name": "\ud800"}
    # Past 64 bits orjson gives a float where json gives an int; the schema refuses both alike.
    huge = (b'{"is_success": "true", "job_list": {"total_count": 1, '
            b'"jobs": [{"job_id": 123456789012345678901234567890}]}}')
    with pytest.raises(PayloadError) as ours:
        parse_page(_json_or_none(huge))
    with pytest.raises(PayloadError) as theirs:
        parse_page(json.loads(huge))
    assert str(ours.value) == str(theirs.value) == "job_list.jobs[0].job_id is a number that is not a 64-bit integer"
    nan = _json_or_none(b'{"v": NaN}')
    assert nan is not None and nan["v"] != nan["v"]
    assert _json_or_none(b'{"cut": "sho') is None and _json_or_none(b"") is None


def test_a_429_without_retry_after_is_not_retried_and_names_the_next_window() -> None:
    """A retry a moment later would land in the same throttling window: none is made, and the
    error carries when the next window begins (about a minute, jittered) for the hold-back."""
    with Simulator({"p1": jobs(5)}, gateway=Gateway(budget=1)) as sim:
        settings = settings_for(sim, retries=3)
        api = build_api(settings, ApiStats())
        target = settings.target("p1")
        summary, _ = jobs_resource.RESOURCE.requests(settings.resource_options())
        try:
            api.reader.fetch_page(target, summary, 0, Deadline.after(5))
            err = fetch_first_page(api, sim.url, seconds=120)
            sent_at = time.monotonic()
        finally:
            api.close()
    assert isinstance(err, Failure)
    assert err.status == 429 and err.error_code == "APIGW.0308" and err.retry_after is None
    assert err.resume_at is not None
    assert err.resume_at - sent_at + 0.5 >= THROTTLE_WINDOW and err.resume_at - sent_at <= THROTTLE_WINDOW * 1.1
    assert [r.status for r in sim.recorded()] == [200, 429]  # no retry, although the deadline allowed one


def test_connection_errors_name_the_host_and_the_cause(tmp_path: Any) -> None:
    """Refused, TLS verification and timeouts over loopback; DNS from the exception chain that
    requests raises (a real lookup would leave loopback)."""
    refused_port = free_port()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(f"http://127.0.0.1:{refused_port}/", timeout=2)
    assert describe_connection_error(refused.value, f"127.0.0.1:{refused_port}") == \
        f"connection to 127.0.0.1:{refused_port} refused"

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    silent = socket.create_server(("127.0.0.1", 0))
    tls = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_tls() -> None:
        tls.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = tls.accept()
            except TimeoutError:
                continue
            try:
                with server_context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve_tls, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{tls.getsockname()[1]}"
        with pytest.raises(requests.exceptions.SSLError) as untrusted:
            requests.get(f"https://{host}/", timeout=2)  # our CA is not in the system's trust store
        assert describe_connection_error(untrusted.value, host).startswith(f"TLS verification of {host} failed: ")
        quiet = f"127.0.0.1:{silent.getsockname()[1]}"  # accepts (the backlog), never answers
        with pytest.raises(requests.Timeout) as slow:
            requests.get(f"http://{quiet}/", timeout=0.3)
        assert describe_connection_error(slow.value, quiet, 0.3) == f"{quiet} did not answer in time (0.3 s)"
    finally:
        stop.set()
        thread.join(2)
        tls.close()
        silent.close()

    # As urllib3 raises it: its name error from the socket's, wrapped by requests.
    lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    name_error = urllib3.exceptions.NameResolutionError("dli.cn-north-4.example", None, lookup)  # type: ignore[arg-type]
    name_error.__cause__ = lookup
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", name_error))  # type: ignore[arg-type]
    assert describe_connection_error(wrapped, "dli.cn-north-4.example:443") == \
        "DNS lookup of dli.cn-north-4.example failed: Name or service not known"
    name_error.__cause__ = None
    assert describe_connection_error(wrapped, "dli.cn-north-4.example:443") == \
        "DNS lookup of dli.cn-north-4.example failed"
