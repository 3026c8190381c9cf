"""Soak: 2,000 scrapes of the real ``dli-exporter`` process against an API that keeps failing in
random ways. Threads, open sockets and memory of the exporter process (read from /proc) must not
grow: a leak per failed call would show here as hundreds of sockets or threads.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Simulator
from tests.helpers import COMMAND, clean_environ, free_port, jobs

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
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.05)
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
    # Fixed sizes: main, two sweep workers, two detail-view workers (one per project) and
    # CONCURRENCY page workers, plus a spare; the listener and at most CONCURRENCY + 2 pooled
    # connections to the API.
    assert threads <= warm_threads and threads <= 1 + 2 + 2 + CONCURRENCY + 1, report
    assert warm_sockets <= 1 + CONCURRENCY + 2 and sockets <= 1 + CONCURRENCY + 2, report
    assert rss - warm_rss < 10 * 1024, report
    assert "Traceback" not in err
    print(report)
