"""The server bounded against its clients: a deadline for request headers, a cap on requests in
flight (503 beyond, /healthz excepted), garbage answered or dropped, and threads and sockets back
to baseline when clients go. Loopback only; every socket here has a timeout."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from exporter.simulator import Simulator
from exporter.web import limits
from exporter.wiring import Exporter
from tests.helpers import jobs, scrape

Start = Callable[..., Exporter]


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def settle(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def idle_connections(exporter: Exporter, count: int) -> Iterator[list[socket.socket]]:
    conns = []
    try:
        for _ in range(count):
            conns.append(socket.create_connection(("127.0.0.1", exporter.port), timeout=5))
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_idle_connections_hold_nothing_scrapes_see_and_threads_return_to_baseline(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(20)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        scrape(exporter, timeout=5)  # warm: the first sweep, the worker threads
        threads, fds = threading.active_count(), open_fds()
        with idle_connections(exporter, 300):
            assert settle(lambda: exporter.server.connections == 300)  # type: ignore[attr-defined]
            # A scrape gets through beside them, within its (Prometheus') timeout of a second.
            resp = scrape(exporter, timeout=1.0)
            assert resp.status == 200 and resp.up("p1") == 1 and resp.seconds < 1.0
        assert settle(lambda: threading.active_count() <= threads and exporter.server.connections == 0)  # type: ignore[attr-defined]
        assert settle(lambda: open_fds() <= fds)


def _trickled_until_cut(exporter: Exporter, silent: socket.socket | None = None) -> float:
    """Seconds until the server cuts a client that sends its header lines a little at a time
    (each read is quick, so no read timeout would catch it); ``silent`` says nothing meanwhile."""
    slow = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
    try:
        started = time.monotonic()
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        while time.monotonic() - started < 4 and not _closed_by_peer(slow):
            try:
                slow.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break  # closed between the check and the send
            time.sleep(0.1)
        took = time.monotonic() - started
        assert _closed_by_peer(slow), took
        assert silent is None or _reads_eof(silent)
        return took
    finally:
        slow.close()


def test_a_client_that_never_finishes_its_headers_is_dropped_at_the_deadline(
        exporter_for: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """One client trickles header lines, another says nothing: both are dropped at the header
    deadline, and scrapes go on."""
    monkeypatch.setattr(limits, "HEADER_TIMEOUT", 0.5)
    with Simulator({"p1": jobs(1)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        silent = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
        try:
            assert _trickled_until_cut(exporter, silent) < 3
        finally:
            silent.close()
        assert settle(lambda: exporter.server.connections == 0)  # type: ignore[attr-defined]
        assert scrape(exporter, timeout=5).status == 200


def test_after_an_idle_spell_the_header_deadline_still_cuts_a_slow_client(
        exporter_for: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one watcher thread sleeps while no connection waits for its headers: once every
    connection is served and a few deadlines have passed with nobody there, a new slow client is
    still cut at its deadline, not left to trickle for ever."""
    monkeypatch.setattr(limits, "HEADER_TIMEOUT", 0.5)
    with Simulator({"p1": jobs(1)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        assert scrape(exporter, timeout=5).status == 200  # the watcher has watched, and has nothing left
        assert settle(lambda: exporter.server.connections == 0)  # type: ignore[attr-defined]
        time.sleep(2.0)  # idle: four deadlines' worth with nothing to watch
        took = _trickled_until_cut(exporter)
        assert 0.4 < took < 2.0, took
        assert scrape(exporter, timeout=5).status == 200


def _closed_by_peer(sock: socket.socket) -> bool:
    """The server closed or reset the connection (whatever it wrote before is read and dropped)."""
    try:
        while select.select([sock], [], [], 0)[0]:
            if not sock.recv(4096):
                return True
    except OSError:
        return True
    return False


def _reads_eof(sock: socket.socket) -> bool:
    sock.settimeout(3)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_requests_beyond_the_limit_get_503_and_healthz_still_answers(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(5)}, latency=1.0) as sim:
        exporter = exporter_for(sim, show_detail=False, web_max_requests=2, cache_seconds=0)
        answers: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            resp = scrape(exporter, timeout=10)
            with lock:
                answers.append(resp.status)

        workers = [threading.Thread(target=one) for _ in range(2)]
        for worker in workers:
            worker.start()
        assert settle(lambda: len(sim.recorded()) >= 1)  # both are in flight, waiting on the API
        time.sleep(0.2)
        extra = requests.get(exporter.url + "/metrics", timeout=5)
        health = requests.get(exporter.url + "/healthz", timeout=5)
        for worker in workers:
            worker.join()
    assert extra.status_code == 503 and extra.headers["Retry-After"] == "1"
    assert extra.text == "too many requests in flight (--web.max-requests=2); try again later\n"
    assert health.status_code == 200 and sorted(answers) == [200, 200]


def _tls_hello() -> bytes:
    """The first bytes a TLS client sends, made by Python's own TLS stack."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


GARBAGE = {
    "binary noise": bytes(range(256)) * 4,
    "a TLS hello on plain HTTP": None,  # made at run time
    "a 100 KB header": b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "a 100 KB request line": b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
    "200 headers": b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    "an unknown method": b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/9": b"GET /metrics HTTP/9.0\r\n\r\n",
    "a lone newline": b"\r\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_gets_an_error_or_a_closed_connection_and_the_server_keeps_serving(
        exporter_for: Start, name: str) -> None:
    data = GARBAGE[name] if GARBAGE[name] is not None else _tls_hello()
    with Simulator({"p1": jobs(1)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        with socket.create_connection(("127.0.0.1", exporter.port), timeout=5) as conn:
            try:
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may close on the first bad bytes
            answer = b""
            try:
                while chunk := conn.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
        assert answer == b"" or answer.startswith((b"HTTP/1.0 4", b"HTTP/1.0 505")), answer[:80]
        if answer:  # one short line that quotes nothing of what was sent
            body = answer.split(b"\r\n\r\n", 1)[1]
            assert body.count(b"\n") == 1 and body[:-1].decode().isprintable(), body
            assert b"aaaa" not in body and b"BREW" not in body and b"9.0" not in body
        assert scrape(exporter, timeout=5).status == 200
        assert settle(lambda: exporter.server.connections == 0)  # type: ignore[attr-defined]


def test_connections_past_the_cap_are_closed_at_once_and_served_again_once_others_go(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(1)}) as sim:
        exporter = exporter_for(sim, show_detail=False)
        exporter.server.max_connections = 3  # type: ignore[attr-defined]  (MAX_CONNECTIONS, made small)
        with idle_connections(exporter, 3):
            assert settle(lambda: exporter.server.connections == 3)  # type: ignore[attr-defined]
            with socket.create_connection(("127.0.0.1", exporter.port), timeout=5) as extra:
                assert _reads_eof(extra)  # closed without a thread
            assert exporter.server.connections == 3  # type: ignore[attr-defined]
        assert settle(lambda: exporter.server.connections == 0)  # type: ignore[attr-defined]
        assert scrape(exporter, timeout=5).status == 200
