"""Soak: 2,000 scrapes of the real ``dli-exporter`` process against an API that keeps failing in
random ways. Threads, open sockets and memory of the exporter process (read from /proc) must not
grow: a leak per failed call would show here as hundreds of sockets or threads.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Simulator
from exporter.web import limits
from tests.helpers import COMMAND, clean_environ, free_port, jobs, wait_healthy

SCRAPES = 2000
WARM_UP = 200
CONCURRENCY = 2


def faults(rng: random.Random) -> list[Fault]:
    """A random mix: mostly healthy, sometimes one fault, now and then a fault that lasts. Not the
    faults that hold the credential back for a minute or more (a refused signature, a long
    Retry-After): they would stop every call of the soak; tests/test_holdback.py covers them."""
    project = rng.choice(["p1", "p2", None])
    roll = rng.random()
    if roll < 0.5:
        return []
    kinds: list[Fault] = [
        Fault("error", project_id=project, status=500, times=rng.choice([1, None])),
        Fault("error", project_id=project, status=400, error_code="DLI.0999", times=1),
        Fault("rate_limit", project_id=project, retry_after=0, times=1),
        Fault("truncate", project_id=project, page=rng.choice([0, 1])),
        Fault("drop", project_id=project, times=rng.choice([1, None])),
        Fault("wrong_types", project_id=project),
        Fault("sloppy_types", project_id=project),
        Fault("not_success", project_id=project),
        Fault("bad_shape", project_id=project),
        Fault("latency", project_id=project, seconds=0.02),
        Fault("body", project_id=project, body=b'{"job_list": {"jobs": [{"job_id": "x"}]}}'),
    ]
    chosen = [rng.choice(kinds)]
    if roll > 0.995:  # rarely, a call that outlives the scrape
        chosen.append(Fault("hang", project_id=project, page=0, seconds=1.5))
    return chosen


def _proc(pid: int) -> tuple[int, int, int]:
    """(threads, open sockets, RSS in kB) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue  # closed while we looked
    return int(fields["Threads"]), sockets, int(fields["VmRSS"].split()[0])


def _quiet(pid: int) -> tuple[int, int, int]:
    """Measured once calls cut off by deadlines have ended: the resting state."""
    time.sleep(2.0)
    return _proc(pid)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_thousand_scrapes_with_random_faults_leak_nothing() -> None:
    rng = random.Random(2026)
    port = free_port()
    with Simulator({"p1": jobs(150), "p2": jobs(30, start=1001)}) as sim:
        env = clean_environ({
            "HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
            "DLI_EXPORTER_PROJECT_IDS": "p1,p2", "DLI_EXPORTER_CACHE_SECONDS": "0",
            "DLI_EXPORTER_RETRIES": "1", "DLI_EXPORTER_CONCURRENCY": str(CONCURRENCY),
            "DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "DLI_EXPORTER_LOG_LEVEL": "error"})
        proc = subprocess.Popen([COMMAND], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            wait_healthy(port)
            statuses: dict[int, int] = {}
            ups = {0.0: 0, 1.0: 0}
            lock = threading.Lock()
            local = threading.local()

            def one(n: int) -> None:
                with lock:
                    sim.clear_faults()
                    for fault in faults(rng):
                        sim.add_fault(fault)
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                resp = local.session.get(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.5"}, timeout=10)
                found = []
                if n % 20 == 0:
                    found = [s.value for f in text_string_to_metric_families(resp.text) if f.name == "dli_up"
                             for s in f.samples]
                with lock:
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                    for value in found:
                        ups[value] += 1

            started = time.monotonic()
            for n in range(WARM_UP):
                one(n)
            warm = _quiet(proc.pid)
            # The rest from four scrapers at once, as from several Prometheus replicas: scrapes
            # also meet sweeps already in flight.
            with ThreadPoolExecutor(max_workers=4) as scrapers:
                list(scrapers.map(one, range(WARM_UP, SCRAPES)))
            took = time.monotonic() - started
            sim.clear_faults()
            end = _quiet(proc.pid)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert statuses == {200: SCRAPES}
    assert ups[0.0] > 10 and ups[1.0] > 50  # the faults did bite, and the healthy sweeps did succeed
    threads, sockets, rss = end
    warm_threads, warm_sockets, warm_rss = warm
    report = f"warm {warm}, end {end} (threads, sockets, RSS kB), {took:.0f}s for {SCRAPES} scrapes"
    # Fixed sizes: main, four sweep workers (two projects, two resources: jobs and queues), two
    # detail-view workers (one per project) and CONCURRENCY page workers, plus a spare; the
    # listener and at most CONCURRENCY + 2 pooled connections to the API.
    assert threads <= warm_threads and threads <= 1 + 2 * 2 + 2 + CONCURRENCY + 1, report
    assert warm_sockets <= 1 + CONCURRENCY + 2 and sockets <= 1 + CONCURRENCY + 2, report
    assert rss - warm_rss < 10 * 1024, report
    assert "Traceback" not in err
    print(report)


@dataclass
class _Chaos:
    """What one round of chaos saw."""

    slowest: float = 0.0  # seconds of the slowest scrape
    statuses: dict[int, int] = field(default_factory=dict)
    idle_rss_kb: int = 0  # the most RSS grew over the resting state while the idle connections were open


def _chaos(sim: Simulator, port: int, pid: int, rest_rss_kb: int, rng: random.Random) -> _Chaos:
    """CHAOS_SECONDS of everything at once, then every client gone."""
    url = f"http://127.0.0.1:{port}/metrics"
    stop = threading.Event()
    lock = threading.Lock()
    seen = _Chaos()

    def scraper() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                with lock:
                    sim.clear_faults()
                    big = [Fault("oversize", size=8 * 1024 * 1024)] if rng.random() < 0.05 else []
                    for fault in faults(rng) + big:
                        sim.add_fault(fault)
                started = time.monotonic()
                resp = session.get(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)},
                                   timeout=30)
                took = time.monotonic() - started
                with lock:
                    seen.slowest = max(seen.slowest, took)
                    seen.statuses[resp.status_code] = seen.statuses.get(resp.status_code, 0) + 1

    def idlers() -> None:
        conns: list[socket.socket] = []
        while not stop.is_set():
            conns = [c for c in conns if not _dropped(c)]
            while len(conns) < IDLE:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            with lock:
                seen.idle_rss_kb = max(seen.idle_rss_kb, _proc(pid)[2] - rest_rss_kb)
            stop.wait(0.5)
        for conn in conns:
            conn.close()

    def tricklers() -> None:
        while not stop.is_set():
            conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
            for n in range(40):
                if stop.is_set():
                    break
                for conn in conns:
                    with contextlib.suppress(OSError):
                        conn.sendall(b"GET /metrics HTTP/1.1\r\n" if n == 0 else b"X-Slow: 1\r\n")
                stop.wait(0.25)
            for conn in conns:
                conn.close()

    def garbage() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn, contextlib.suppress(OSError):
                conn.sendall(rng.choice([bytes(range(256)), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                         b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"BREW / HTTP/1.1\r\n\r\n"]))
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            stop.wait(0.2)

    workers = [threading.Thread(target=f) for f in (scraper,) * 4 + (idlers, tricklers, garbage)]
    for worker in workers:
        worker.start()
    time.sleep(CHAOS_SECONDS)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)
    sim.clear_faults()
    time.sleep(limits.HEADER_TIMEOUT)  # what the server still held of the clients has timed out
    return seen


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_chaos_api_faults_slow_and_idle_clients_and_scrapes_at_once() -> None:
    """Two rounds of everything at once against the real process: the API failing at random
    (an oversized answer among the faults), 300 idle connections reopened as the server drops
    them, clients trickling their headers, garbage, and scrapes from four scrapers. No scrape
    takes longer than its timeout; after each round, threads and sockets are back where they were
    before it, and the second round leaves RSS where the first did (the first may grow it once,
    as allocators keep what they were given)."""
    rng = random.Random(7)
    port = free_port()
    with Simulator({"p1": jobs(150), "p2": jobs(30, start=1001)}) as sim:
        env = clean_environ({
            "HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK, "DLI_EXPORTER_ENDPOINT": sim.url,
            "DLI_EXPORTER_PROJECT_IDS": "p1,p2", "DLI_EXPORTER_CACHE_SECONDS": "0", "DLI_EXPORTER_RETRIES": "1",
            "DLI_EXPORTER_CONCURRENCY": str(CONCURRENCY), "DLI_EXPORTER_MAX_RESPONSE_BYTES": str(1024 * 1024),
            "DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "DLI_EXPORTER_LOG_LEVEL": "error"})
        proc = subprocess.Popen([COMMAND], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(port)
            for _ in range(20):
                requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            warm = _quiet(proc.pid)
            first = _chaos(sim, port, proc.pid, warm[2], rng)
            middle = _quiet(proc.pid)
            second = _chaos(sim, port, proc.pid, middle[2], rng)
            end = _quiet(proc.pid)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    rounds = (first, second)
    report = (f"warm {warm}, after round 1 {middle}, after round 2 {end} (threads, sockets, RSS kB); "
              f"RSS with {IDLE} idle connections +{max(r.idle_rss_kb for r in rounds) / 1024:.1f} MB at most; "
              f"slowest scrape {max(r.slowest for r in rounds):.2f} s of {SCRAPE_TIMEOUT} s; "
              f"{sum(sum(r.statuses.values()) for r in rounds)} scrapes")
    assert all(r.statuses.keys() == {200} for r in rounds), report
    assert all(r.slowest < SCRAPE_TIMEOUT for r in rounds), report
    assert all(after[0] <= warm[0] and after[1] <= warm[1] for after in (middle, end)), report  # threads, sockets
    assert all(r.idle_rss_kb < 60 * 1024 for r in rounds), report
    assert end[2] - middle[2] < 4 * 1024, report
    assert "Traceback" not in err
    print(report)


CHAOS_SECONDS = 15
SCRAPE_TIMEOUT = 2.0
IDLE = 300


def _dropped(conn: socket.socket) -> bool:
    """The server has closed this idle connection (its header deadline): close our end too."""
    try:
        if select.select([conn], [], [], 0)[0] and not conn.recv(1):
            conn.close()
            return True
    except OSError:
        conn.close()
        return True
    return False
