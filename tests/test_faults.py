"""The fault matrix: every fault the API can throw, injected over real HTTP, watched on /metrics.

Each case runs the same story against a running exporter and a simulator with two projects: a
healthy scrape (the baseline), a scrape with the fault on project ``p1``, then a scrape after the
fault is gone. In every case ``/metrics`` answers 200 within Prometheus' timeout, ``p2`` is
exactly as it was, and the next healthy sweep gives back exactly the baseline. Faults that
retries are meant to absorb (one 429, one 500, sloppy types) leave ``p1`` up with all its jobs;
the rest leave ``p1`` with ``dli_up 0`` and not one job series. The queues have faults of their
own, which withhold the queue series alone: the jobs and ``dli_up`` do not notice, nor the reverse.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from exporter.environment import load_settings
from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Simulator
from exporter.wiring import Exporter
from tests.helpers import SCRAPE_TIMEOUT, Scrape, Series, captured_logs, free_port, jobs, running_exporter, scrape

Start = Callable[..., Exporter]
P1, P2 = "p1", "p2"


def queues_of(got: Scrape, project: str) -> Series:
    """Every dli_queue_* sample of the project."""
    return {key: v for key, v in got.series.items()
            if key[0].startswith("dli_queue_") and ("project_id", project) in key[1]}


def queues_up(got: Scrape, project: str) -> float | None:
    return got.value("dli_resource_up", project_id=project, resource="queues")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The exporter's log as it would reach stderr: our logfmt formatter at DEBUG."""
    with captured_logs() as stream:
        yield stream


@pytest.fixture
def world() -> Iterator[Simulator]:
    # p1 has three pages, so faults can hit a page in the middle of a sweep.
    sim = Simulator({P1: jobs(250), P2: jobs(120, start=1001)}).start()
    try:
        yield sim
    finally:
        sim.stop()


@dataclass(frozen=True)
class Case:
    faults: tuple[Fault, ...]
    down: bool  # True: p1 must end down; False: retries or tolerance must absorb the fault
    # Fields of one job the fault makes unreadable: p1 stays up, that job loses those fields alone
    # (and its name, if named here, becomes ""), and each is counted in dli_api_field_errors_total.
    left_out: tuple[str, ...] = ()


CASES = {
    "500 on every call": Case((Fault("error", project_id=P1, status=500, error_code="APIG.0201",
                                     error_msg="Internal Server Error"),), down=True),
    "500 on one page, always": Case((Fault("error", project_id=P1, page=2, status=500),), down=True),
    "DLI.0999 with HTTP 400, always": Case((Fault("error", project_id=P1, status=400, error_code="DLI.0999"),),
                                           down=True),
    "a client error (DLI.0001)": Case((Fault("error", project_id=P1, page=1, status=400, error_code="DLI.0001",
                                             error_msg="Parameter error."),), down=True),
    "truncated JSON": Case((Fault("truncate", project_id=P1, page=1),), down=True),
    "wrong types in fields": Case((Fault("wrong_types", project_id=P1, page=2),), down=False,
                                  left_out=("job.has_savepoint", "job.name", "job.restart_times")),
    "a job without job_id": Case((Fault("body", project_id=P1, page=1, body=b'{"is_success": true, "job_list": '
                                        b'{"total_count": 250, "jobs": [{"name": "no id"}]}}'),), down=True),
    "is_success false": Case((Fault("not_success", project_id=P1, error_msg="Internal error"),), down=True),
    "no job list": Case((Fault("bad_shape", project_id=P1, page=1),), down=True),
    "connection closed without an answer": Case((Fault("drop", project_id=P1, page=1),), down=True),
    "hangs past the scrape deadline": Case((Fault("hang", project_id=P1, page=1, seconds=30),), down=True),
    "one 429 with Retry-After": Case((Fault("rate_limit", project_id=P1, page=1, times=1, retry_after=0.5),),
                                     down=False),
    "one 500": Case((Fault("error", project_id=P1, page=2, times=1, status=500),), down=False),
    "one DLI.0999 with HTTP 400": Case((Fault("error", project_id=P1, page=0, times=1, status=400,
                                              error_code="DLI.0999"),), down=False),
    "sloppy types (numbers as strings)": Case((Fault("sloppy_types", project_id=P1),), down=False),
    "slow but in time": Case((Fault("latency", project_id=P1, seconds=0.3),), down=False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str, world: Simulator, exporter_for: Start, log_lines: io.StringIO) -> None:
    case = CASES[name]
    # A field the summary view left out is filled from the detail view where that has it (read
    # minutes before): the summary alone shows what is lost.
    exporter = exporter_for(world, retries=3, queue_interval_seconds=0, show_detail=not case.left_out)
    baseline = scrape(exporter)
    assert baseline.status == 200 and baseline.up(P1) == 1 and baseline.up(P2) == 1
    assert len(baseline.jobs_of(P1)) > 250 and len(baseline.jobs_of(P2)) > 120
    assert queues_up(baseline, P1) == 1 and queues_of(baseline, P1)

    for fault in case.faults:
        world.add_fault(fault)
    hit = scrape(exporter)
    assert hit.status == 200
    assert hit.seconds < SCRAPE_TIMEOUT, f"answered in {hit.seconds:.2f}s"
    assert hit.up(P2) == 1 and hit.jobs_of(P2) == baseline.jobs_of(P2), "the healthy project changed"
    if case.down:
        assert hit.up(P1) == 0
        assert hit.jobs_of(P1) == {}, "a failed project must show no job series"
        # Its last success stays visible, for "down for how long" alerts.
        assert hit.value("dli_last_success_timestamp_seconds", project_id=P1) == \
            baseline.value("dli_last_success_timestamp_seconds", project_id=P1)
    elif case.left_out:
        assert hit.up(P1) == 1
        assert_one_job_lost_only(baseline.jobs_of(P1), hit.jobs_of(P1), case.left_out)
        assert {dict(labels)["field"] for (name, labels), v in hit.series.items()
                if name == "dli_api_field_errors_total" and v > 0} == set(case.left_out)
    else:
        assert hit.up(P1) == 1 and hit.jobs_of(P1) == baseline.jobs_of(P1)
    if not case.left_out:
        assert hit.total("dli_api_field_errors_total") == 0
    # The jobs' faults are theirs alone: the queues were read as ever.
    assert queues_up(hit, P1) == 1 and queues_of(hit, P1) == queues_of(baseline, P1)

    world.clear_faults()
    healed = scrape(exporter)
    assert healed.status == 200 and healed.up(P1) == 1 and healed.up(P2) == 1
    assert healed.jobs_of(P1) == baseline.jobs_of(P1) and healed.jobs_of(P2) == baseline.jobs_of(P2)
    assert_one_line_per_event(log_lines.getvalue())


def assert_one_job_lost_only(before: Series, after: Series, fields: tuple[str, ...]) -> None:
    """``after`` is ``before`` but for one job: the series of its ``fields`` gone, and its name
    label "" where the name is among them."""
    def job_of(key: tuple[str, frozenset[tuple[str, str]]]) -> str:
        return dict(key[1]).get("job_id", "")
    changed = {job_of(key) for key in before.keys() ^ after.keys()}
    changed |= {job_of(key) for key in before.keys() & after.keys() if before[key] != after[key]}
    [odd] = changed - {""}  # one job; "" is an aggregate (dli_jobs) that names no job
    assert {k: v for k, v in before.items() if job_of(k) != odd and k[0] != "dli_jobs"} == \
        {k: v for k, v in after.items() if job_of(k) != odd and k[0] != "dli_jobs"}
    renamed = "job.name" in fields
    gone = {"job.restart_times": "dli_job_restarts_total", "job.has_savepoint": "dli_job_has_savepoint"}
    expected = {(name, frozenset((k, "" if renamed and k == "name" else v) for k, v in labels)): value
                for (name, labels), value in before.items()
                if job_of((name, labels)) == odd and name not in {gone[f] for f in fields if f in gone}}
    assert {k: v for k, v in after.items() if job_of(k) == odd} == expected


QUEUE_FAULTS = {
    "500 on every call": (Fault("error", resource="queues", project_id=P1, status=500), True),
    "truncated JSON": (Fault("truncate", resource="queues", project_id=P1), True),
    "no list of queues": (Fault("bad_shape", resource="queues", project_id=P1), True),
    "is_success false": (Fault("not_success", resource="queues", project_id=P1), True),
    "connection closed without an answer": (Fault("drop", resource="queues", project_id=P1), True),
    "hangs past the scrape deadline": (Fault("hang", resource="queues", project_id=P1, seconds=30), True),
    "a refusal of this list alone (403)": (Fault("error", resource="queues", project_id=P1, status=403,
                                                 error_code="DLI.0013", error_msg="No permission."), True),
    "one 500": (Fault("error", resource="queues", project_id=P1, times=1, status=500), False),
    "sloppy types (numbers as strings)": (Fault("sloppy_types", resource="queues", project_id=P1), False),
}


@pytest.mark.parametrize("name", list(QUEUE_FAULTS))
def test_a_queue_fault_withholds_the_queue_series_alone(name: str, world: Simulator, exporter_for: Start,
                                                        log_lines: io.StringIO) -> None:
    fault, down = QUEUE_FAULTS[name]
    exporter = exporter_for(world, retries=3, queue_interval_seconds=0)
    baseline = scrape(exporter)
    world.add_fault(fault)
    hit = scrape(exporter)
    assert hit.status == 200 and hit.seconds < SCRAPE_TIMEOUT
    # The jobs and dli_up do not notice; the other project's queues neither.
    assert hit.up(P1) == 1 and hit.jobs_of(P1) == baseline.jobs_of(P1)
    assert hit.value("dli_resource_up", project_id=P1, resource="jobs") == 1
    assert queues_up(hit, P2) == 1 and queues_of(hit, P2) == queues_of(baseline, P2)
    if down:
        assert queues_up(hit, P1) == 0 and queues_of(hit, P1) == {}
        assert hit.value("dli_resource_last_success_timestamp_seconds", project_id=P1, resource="queues") == \
            baseline.value("dli_resource_last_success_timestamp_seconds", project_id=P1, resource="queues")
    else:
        assert queues_up(hit, P1) == 1 and queues_of(hit, P1) == queues_of(baseline, P1)
    world.clear_faults()
    healed = scrape(exporter)
    assert queues_up(healed, P1) == 1 and queues_of(healed, P1) == queues_of(baseline, P1)
    assert_one_line_per_event(log_lines.getvalue())


def test_an_odd_queue_field_loses_that_field_alone(world: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(world, queue_interval_seconds=0)
    baseline = scrape(exporter)
    world.add_fault(Fault("wrong_types", resource="queues", project_id=P1))
    hit = scrape(exporter)
    assert queues_up(hit, P1) == 1 and hit.up(P1) == 1
    before, after = queues_of(baseline, P1), queues_of(hit, P1)
    changed = {dict(key[1])["queue"] for key in before.keys() ^ after.keys()}
    [odd] = changed  # the last queue of the answer; every other one as before
    assert {k: v for k, v in before.items() if ("queue", odd) not in k[1]} == \
        {k: v for k, v in after.items() if ("queue", odd) not in k[1]}
    names = {key[0] for key in after if ("queue", odd) in key[1]}
    assert names == {key[0] for key in before if ("queue", odd) in key[1]} - {"dli_queue_compute_units",
                                                                            "dli_queue_restarting"}
    [info] = [labels for name, labels in after if name == "dli_queue_info" and ("queue", odd) in labels]
    assert ("engine", "") in info  # the label read from the odd field is empty; the others as before
    assert {dict(labels)["field"]: v for (name, labels), v in hit.series.items()
            if name == "dli_api_field_errors_total"} == {"queue.cu_count": 1, "queue.engine": 1,
                                                          "queue.is_restarting": 1}


def test_queues_are_read_on_their_own_cadence_and_a_failure_is_tried_again_at_the_next_scrape(
        world: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(world)  # queues every 300 s (the default), the jobs every scrape
    for _ in range(3):
        assert queues_up(scrape(exporter), P1) == 1
    assert len(world.recorded(f"/v1.0/{P1}/queues")) == 1 and len(world.recorded(f"/v1.0/{P1}/streaming")) > 3
    failing = exporter_for(world, queue_interval_seconds=300, retries=0)
    world.add_fault(Fault("error", resource="queues", project_id=P1, status=500, times=1))
    assert queues_up(scrape(failing), P1) == 0
    assert queues_up(scrape(failing), P1) == 1  # not 300 s without queues for one failed call


def test_one_429_waits_as_asked_and_is_counted(world: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(world)
    before = scrape(exporter)
    world.add_fault(Fault("rate_limit", project_id=P1, page=1, times=1, retry_after=0.8))
    after = scrape(exporter)
    assert after.up(P1) == 1 and after.seconds >= 0.8
    assert after.total("dli_api_requests_total", project_id=P1, code="429") == 1
    assert after.total("dli_api_retries_total", project_id=P1) == before.total("dli_api_retries_total",
                                                                               project_id=P1) + 1


def test_a_persistent_500_is_retried_then_counted(world: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(world, retries=2, show_detail=False)
    world.add_fault(Fault("error", project_id=P1, page=0, status=500))
    after = scrape(exporter)
    assert after.up(P1) == 0
    assert after.total("dli_api_requests_total", project_id=P1, code="500") == 3  # one call and two retries
    assert after.total("dli_api_requests_total", project_id=P1, code="200") == 1  # the queues' call
    assert after.total("dli_api_retries_total", project_id=P1) == 2


def test_a_bad_signature_logs_authentication_failed_with_the_request_id(
        world: Simulator, exporter_for: Start, log_lines: io.StringIO) -> None:
    exporter = exporter_for(world)
    world.add_fault(Fault("bad_signature", project_id=P1))
    assert scrape(exporter).up(P1) == 0
    denied = [r for r in world.recorded(f"/v1.0/{P1}/") if r.status == 401]
    # Each call refused once (the summary's and the detail's first pages may be in flight
    # together once p2's answer made the key trusted): a 401 is never retried.
    calls = [(r.path, tuple(sorted(r.query.items()))) for r in denied]
    assert denied and len(set(calls)) == len(calls), "a 401 must not be retried"
    lines = [line for line in log_lines.getvalue().splitlines()
             if "authentication failed" in line and "level=debug" not in line]
    assert len(lines) == 1, log_lines.getvalue()  # the hold's one line, with all there is to know
    assert "level=warning" in lines[0] and f"project_id={P1}" in lines[0] and "retry_in=60" in lines[0]
    assert f"request_id={denied[0].request_id}" in lines[0]
    assert "verify aksk signature fail" in lines[0]


def test_connection_refused_marks_every_project_down_then_recovers(exporter_for: Start) -> None:
    """Nothing listens at the endpoint at first; then the API comes up on that very port."""
    port = free_port()
    absent = Simulator({P1: jobs(250), P2: jobs(120, start=1001)})
    settings = load_settings({"ak": DEMO_AK, "sk": DEMO_SK, "endpoint": f"http://127.0.0.1:{port}",
                              "project_ids": f"{P1},{P2}", "listen_address": "127.0.0.1:0", "cache_seconds": 0})
    with running_exporter(settings) as exporter:
        hit = scrape(exporter)
        assert hit.status == 200 and hit.seconds < SCRAPE_TIMEOUT
        assert hit.up(P1) == 0 and hit.up(P2) == 0
        assert hit.jobs_of(P1) == {} and hit.jobs_of(P2) == {}
        assert hit.total("dli_api_requests_total", project_id=P1, code="error") >= 1
        with absent.start(port=port):
            healed = scrape(exporter)
    assert healed.up(P1) == 1 and healed.up(P2) == 1
    assert len(healed.jobs_of(P1)) > 250 and len(healed.jobs_of(P2)) > 120


def test_an_expired_iam_token_is_replaced_by_exactly_one_login(exporter_for: Start) -> None:
    users = {("acme", "monitor"): "s3cret-Pa55"}
    with Simulator({P1: jobs(250), P2: jobs(120, start=1001)}, credentials={}, iam_users=users) as sim:
        exporter = exporter_for(sim, ak=None, sk=None, iam_username="monitor", iam_password="s3cret-Pa55",
                                iam_domain="acme", iam_endpoint=sim.url)
        first = scrape(exporter)
        assert first.up(P1) == 1 and first.up(P2) == 1
        assert first.total("dli_iam_logins_total", project_id=P1) == 1
        sim.expire_tokens()
        second = scrape(exporter)
        assert second.status == 200 and second.up(P1) == 1 and second.up(P2) == 1
        assert second.jobs_of(P1) == first.jobs_of(P1) and second.jobs_of(P2) == first.jobs_of(P2)
        for project in (P1, P2):
            assert second.total("dli_iam_logins_total", project_id=project) == 2  # one new token each
        rejected = [r for r in sim.recorded() if r.status == 401]
        # The first call per project (the jobs' or the queues'), and nothing after the new token.
        assert len(rejected) == 2
        third = scrape(exporter)
        assert third.total("dli_iam_logins_total") == 4  # the new tokens are reused


def test_faults_on_both_projects_at_once(world: Simulator, exporter_for: Start) -> None:
    exporter = exporter_for(world)
    baseline = scrape(exporter)
    world.add_fault(Fault("hang", project_id=P1, seconds=30))
    world.add_fault(Fault("truncate", project_id=P2))
    hit = scrape(exporter)
    assert hit.status == 200 and hit.seconds < SCRAPE_TIMEOUT
    assert hit.up(P1) == 0 and hit.up(P2) == 0 and hit.jobs_of(P1) == {} and hit.jobs_of(P2) == {}
    world.clear_faults()
    healed = scrape(exporter)
    assert healed.jobs_of(P1) == baseline.jobs_of(P1) and healed.jobs_of(P2) == baseline.jobs_of(P2)


_LOGFMT_LINE = re.compile(r'ts=\S+ level=(debug|info|warning|error) logger=\S+ msg=("(?:[^"\\]|\\.)*"|\S+)( |$)')


def assert_one_line_per_event(text: str) -> None:
    """Every line starts a new event: no traceback or message ever spills onto a second line."""
    lines = text.splitlines()
    assert lines, "nothing was logged"
    bad = [line for line in lines if not _LOGFMT_LINE.match(line)]
    assert not bad, bad[:3]
