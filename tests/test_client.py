"""The DLI side over real HTTP against the simulator: paging, retries, errors, IAM login."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from exporter.dli.errors import Failure
from exporter.dli.reader import ListRequest
from exporter.domain import Deadline, Page, Result, Target
from exporter.resources import jobs as jobs_resource
from exporter.selfmetrics import ApiStats
from exporter.settings import Settings
from exporter.simulator import Fault, Simulator
from exporter.sweeper import Sweeper, Swept
from exporter.wiring import build_api
from tests.helpers import answering, free_port, job, jobs, settings_for


class Client:
    """The DLI side as the exporter assembles it, reading one list of one project at a time."""

    def __init__(self, settings: Settings, detail: bool = False) -> None:
        self.settings = settings
        summary, *more = jobs_resource.RESOURCE.requests(settings.resource_options())
        self.request: ListRequest = more[0] if detail else summary
        self.stats = ApiStats()
        self.api = build_api(settings, self.stats)

    def __repr__(self) -> str:
        return f"Client({self.api!r}, {self.api.transport!r})"

    def sweep_project(self, project_id: str, deadline: Deadline) -> Result:
        return self.api.read(self.settings.target(project_id), self.request, deadline)

    def sweep_target(self, target: Target, deadline: Deadline) -> Result:
        return self.api.read(target, self.request, deadline)

    def fetch_page(self, project_id: str, offset: int, deadline: Deadline) -> Page | Failure:
        return self.api.reader.fetch_page(self.settings.target(project_id), self.request, offset, deadline)

    def close(self) -> None:
        self.api.close()


def client_for(sim: Simulator, **overrides: Any) -> Client:
    """The DLI side reading the summary view, or the detail view when ``show_detail`` is asked for."""
    return Client(settings_for(sim, **overrides), detail=bool(overrides.get("show_detail")))


def far() -> Deadline:
    return Deadline.after(20)


@pytest.fixture
def big() -> Any:
    sim = Simulator({"p1": jobs(250)}).start()
    yield sim
    sim.stop()


def test_reads_every_page_with_limit_100_oldest_first(big: Simulator) -> None:
    client = client_for(big)
    result = client.sweep_project("p1", far())
    client.close()
    assert result.ok and result.pages == 3 and result.total_count == 250
    assert sorted(j.job_id for j in result.records or []) == list(range(1, 251))
    queries = [r.query for r in big.recorded()]
    assert sorted(int(q["offset"]) for q in queries) == [0, 100, 200]
    assert all(q["limit"] == "100" and q["order"] == "asc" for q in queries)
    assert all("show_detail" not in q for q in queries)


def test_every_request_is_signed_and_names_the_project(big: Simulator) -> None:
    client = client_for(big)
    client.sweep_project("p1", far())
    client.close()
    for rec in big.recorded():
        assert rec.status == 200  # the simulator verified the signature
        assert rec.headers["x-project-id"] == "p1"
        assert rec.headers["authorization"].startswith("SDK-HMAC-SHA256 Access=")
        signed = rec.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert signed == ["accept", "accept-encoding", "content-type", "host", "user-agent", "x-project-id",
                          "x-sdk-date"]
        assert "connection" not in rec.headers  # hop-by-hop: not sent, so never signed


def test_filters_and_show_detail_are_passed_through() -> None:
    data = [job(1, queue_name="q1", job_type="flink_jar_job"), job(2, queue_name="q2"),
            job(3, queue_name="q1", job_type="flink_sql_job")]
    with Simulator({"p1": data}) as sim:
        client = client_for(sim, queue_name="q1", job_type="flink_jar_job", show_detail=True, tags="team=risk",
                            user_name="alice", name="job", status="job_running")
        result = client.sweep_project("p1", far())
        query = sim.recorded()[0].query
        client.close()
    assert query == {"limit": "100", "offset": "0", "order": "asc", "show_detail": "true", "queue_name": "q1",
                     "job_type": "flink_jar_job", "tags": "team=risk", "user_name": "alice", "name": "job",
                     "status": "job_running"}
    assert result.ok


def test_filters_narrow_the_result() -> None:
    data = [job(1, queue_name="q1"), job(2, queue_name="q2"), job(3, queue_name="q1")]
    with Simulator({"p1": data}) as sim:
        client = client_for(sim, queue_name="q1")
        result = client.sweep_project("p1", far())
        client.close()
    assert sorted(j.job_id for j in result.records or []) == [1, 3]


def test_a_job_listed_twice_counts_once() -> None:
    data = jobs(150)
    with Simulator({"p1": [*data, dict(data[0])]}) as sim:
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok
    assert len(result.records or []) == 150


def test_pages_are_read_concurrently_but_never_more_than_the_limit() -> None:
    with Simulator({"p1": jobs(2000)}, latency=0.05) as sim:
        client = client_for(sim, concurrency=4)
        started = time.monotonic()
        result = client.sweep_project("p1", far())
        elapsed = time.monotonic() - started
        client.close()
        records = sim.recorded()
    assert result.ok and len(result.records or []) == 2000 and len(records) == 20
    # 1 page, then 19 pages at 4 at a time: 6 round trips of 50 ms, far from the 20 of a serial read.
    assert elapsed < 20 * 0.05
    in_flight = max(sum(1 for r in records if r.at <= x.at < r.at + 0.05) for x in records)
    assert in_flight <= 4


def test_pages_share_pooled_keep_alive_connections() -> None:
    with Simulator({"p1": jobs(2000)}, latency=0.02) as sim:
        client = client_for(sim, concurrency=4)
        client.sweep_project("p1", far())
        first = {r.peer for r in sim.recorded()}
        client.sweep_project("p1", far())
        client.close()
        both = {r.peer for r in sim.recorded()}
    assert len(sim.recorded()) == 40
    assert len(first) <= 4  # 20 pages over at most `concurrency` connections
    assert both == first  # the second sweep opened no new connection


def test_server_errors_are_retried() -> None:
    with Simulator({"p1": jobs(250)}) as sim:
        sim.add_fault(Fault("error", page=1, times=2, status=503, error_code="APIG.0201", error_msg="busy"))
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        retries = dict(client.stats.retries)
        codes = dict(client.stats.requests)
        client.close()
    assert result.ok and len(result.records or []) == 250
    assert retries == {"p1": 2}
    assert codes == {("p1", "200"): 3, ("p1", "503"): 2}


def test_dli_0999_with_http_400_is_retried() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("error", times=1, status=400, error_code="DLI.0999", error_msg="Server system error."))
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok and client.stats.retries == {"p1": 1}


def test_a_client_error_is_not_retried_and_says_what_happened() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("error", status=400, error_code="DLI.0001", error_msg="Parameter error."))
        client = client_for(sim)
        err = client.fetch_page("p1", 0, far())
        recorded = sim.recorded()
        client.close()
    assert isinstance(err, Failure)
    assert (err.status, err.error_code, err.message) == (400, "DLI.0001", "Parameter error.")
    assert len(recorded) == 1  # not retried
    # The id is the one the gateway sent with this very answer, and the message quotes it.
    assert err.request_id == recorded[0].request_id and len(err.request_id) == 32
    assert f"(request_id={err.request_id})" in str(err)


def test_429_honours_retry_after() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("rate_limit", times=1, retry_after=0.4))
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        times = [r.at for r in sim.recorded()]
        client.close()
    assert result.ok
    assert len(times) == 2 and times[1] - times[0] >= 0.4


def test_retry_after_past_the_deadline_fails_at_once() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("rate_limit", retry_after=30))
        client = client_for(sim)
        started = time.monotonic()
        result = client.sweep_project("p1", Deadline.after(2))
        client.close()
    assert not result.ok and "429" in (result.error or "")
    assert time.monotonic() - started < 1


def test_retries_are_bounded() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("error", status=500))
        client = client_for(sim, retries=2)
        result = client.sweep_project("p1", far())
        client.close()
    assert not result.ok and len(sim.recorded()) == 3
    assert "HTTP 500" in (result.error or "") and "DLI.0999" in (result.error or "")


def sweep_with(fault: Fault, **overrides: Any) -> Result:
    """One sweep of a small project while ``fault`` is on."""
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(fault)
        client = client_for(sim, **overrides)
        result = client.sweep_project("p1", far())
        client.close()
    return result


@pytest.mark.parametrize(("fault", "overrides", "said"), [
    (Fault("not_success", error_msg="Querying failed."), {}, "Querying failed."),
    (Fault("truncate"), {"retries": 1}, "not valid JSON"),
])
def test_an_answer_that_is_not_a_job_list_is_an_error(fault: Fault, overrides: dict[str, Any], said: str) -> None:
    result = sweep_with(fault, **overrides)
    assert not result.ok and said in (result.error or "")


class NoWaiting(Deadline):
    """A deadline nobody may wait on: asking how long is left fails the test."""

    def left(self) -> float:
        raise AssertionError("waited on the deadline")


def test_no_batch_of_pages_is_waited_on_when_none_is_asked_for() -> None:
    """A read that asks for no further pages (the first held them all) returns at once: with no
    page to wake it, a wait would last until the scrape's deadline (it once did, for a list of
    exactly 100 jobs)."""
    with Simulator({"p1": jobs(100)}) as sim:
        client = client_for(sim)
        assert client.api.reader._wait_all([], NoWaiting(time.monotonic() + 60, 60)) == []
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok and len(result.records or []) == 100 and result.pages == 1


def test_sloppy_types_still_give_every_job() -> None:
    with Simulator({"p1": jobs(120)}) as sim:
        sim.add_fault(Fault("sloppy_types"))
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok and len(result.records or []) == 120
    assert all(j.restarts == 0 and j.duration_ms == 3_600_000 for j in result.records or [])


def test_wrong_types_lose_the_fields_not_the_project() -> None:
    with Simulator({"p1": jobs(120)}) as sim:
        sim.add_fault(Fault("wrong_types", page=1))
        client = client_for(sim)
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok and len(result.records or []) == 120
    odd = [j for j in result.records or [] if j.restarts is None]
    assert [j.job_id for j in odd] == [120] and odd[0].name == "" and odd[0].savepoint is None
    assert sorted({e.field for e in result.field_errors}) == ["job.has_savepoint", "job.name", "job.restart_times"]
    assert "several" not in repr(result.field_errors)


def test_connection_refused_is_an_error_counted_as_error() -> None:
    port = free_port()
    with Simulator({"p1": []}) as sim:
        settings = settings_for(sim, endpoint=f"http://127.0.0.1:{port}", retries=1)
    client = Client(settings)
    result = client.sweep_project("p1", far())
    client.close()
    assert not result.ok and result.error == f"connection to 127.0.0.1:{port} refused"  # the host and the cause
    assert client.stats.requests == {("p1", "error"): 2}


def test_a_hanging_api_is_cut_at_the_deadline() -> None:
    with Simulator({"p1": jobs(5)}) as sim:
        sim.add_fault(Fault("hang", seconds=5))
        client = client_for(sim, request_timeout_seconds=30)
        started = time.monotonic()
        result = client.sweep_project("p1", Deadline.after(0.5))
        elapsed = time.monotonic() - started
        client.close()
    assert not result.ok
    assert elapsed < 1.0


def test_jobs_deleted_while_paging_trigger_a_second_read() -> None:
    data = jobs(250)
    with Simulator({"p1": data}) as sim:
        # Delete a job from page one just as page three is asked for: page three's offsets shift
        # left, so one job is on no page, and the count says so.
        original = sim.list_jobs
        deleted = threading.Event()

        def list_jobs(project_id: str, query: dict[str, str], region: str = "") -> Any:
            if query.get("offset") == "200" and not deleted.is_set():
                deleted.set()
                sim.set_jobs("p1", data[1:])
            return original(project_id, query, region)

        sim.list_jobs = list_jobs  # type: ignore[method-assign]
        client = client_for(sim, concurrency=1)
        result = client.sweep_project("p1", far())
        client.close()
        offsets = [r.query["offset"] for r in sim.recorded()]
    assert result.ok
    assert sorted(j.job_id for j in result.records or []) == list(range(2, 251))
    assert offsets == ["0", "100", "200", "0", "100", "200"]


def test_jobs_created_while_paging_are_read_too() -> None:
    data = jobs(200)
    with Simulator({"p1": data}) as sim:
        original = sim.list_jobs

        def list_jobs(project_id: str, query: dict[str, str], region: str = "") -> Any:
            if query.get("offset") == "100" and len(sim.projects["p1"]) == 200:
                sim.set_jobs("p1", data + jobs(5, start=1000))
            return original(project_id, query, region)

        sim.list_jobs = list_jobs  # type: ignore[method-assign]
        client = client_for(sim, concurrency=1)
        result = client.sweep_project("p1", far())
        client.close()
    assert result.ok and len(result.records or []) == 205


def test_one_failed_project_does_not_touch_the_others() -> None:
    with Simulator({"p1": jobs(3), "p2": jobs(2, start=50)}) as sim:
        sim.add_fault(Fault("error", project_id="p2", status=500))
        client = client_for(sim, retries=0)
        sweeper = Sweeper([Swept("jobs", client.sweep_target, lambda result: 0.0)])
        results = sweeper.get(client.settings.targets, far()).results
        sweeper.close()
        client.close()
    assert results["p1", "jobs"].ok and len(results["p1", "jobs"].records or []) == 3
    assert not results["p2", "jobs"].ok and results["p2", "jobs"].records is None


class TestIamLogin:
    @pytest.fixture
    def iam(self) -> Any:
        sim = Simulator({"p1": jobs(3)}, credentials={}, iam_users={("acme", "monitor"): "s3cret-Pa55"}).start()
        yield sim
        sim.stop()

    def settings(self, sim: Simulator, password: str = "s3cret-Pa55") -> dict[str, Any]:
        return {"ak": None, "sk": None, "iam_username": "monitor", "iam_password": password, "iam_domain": "acme",
                "iam_endpoint": sim.url}

    def test_logs_in_once_and_reuses_the_token(self, iam: Simulator) -> None:
        client = Client(settings_for(iam, **self.settings(iam)))
        assert client.sweep_project("p1", far()).ok
        assert client.sweep_project("p1", far()).ok
        client.close()
        logins = iam.recorded("/v3/auth/tokens")
        assert len(logins) == 1
        assert all("x-auth-token" in r.headers for r in iam.recorded())
        assert client.stats.logins == {("p1", "201"): 1}

    def test_an_expired_token_is_replaced_once(self, iam: Simulator) -> None:
        client = Client(settings_for(iam, **self.settings(iam)))
        assert client.sweep_project("p1", far()).ok
        iam.expire_tokens()
        assert client.sweep_project("p1", far()).ok
        client.close()
        assert len(iam.recorded("/v3/auth/tokens")) == 2
        assert [r.status for r in iam.recorded()] == [200, 401, 200]

    def test_a_wrong_password_fails_the_project_without_leaking_it(self, iam: Simulator) -> None:
        client = Client(settings_for(iam, **self.settings(iam, password="wrong-Pa55word")))
        result = client.sweep_project("p1", far())
        client.close()
        assert not result.ok
        assert "IAM login failed" in (result.error or "") and "wrong-Pa55word" not in (result.error or "")
        # The login failed, so no API call was made: none is counted, and the login once, as refused.
        assert client.stats.requests == {} and client.stats.logins == {("p1", "401"): 1}
        assert "wrong-Pa55word" not in repr(client) and "wrong-Pa55word" not in repr(client.settings)


def test_the_request_id_comes_from_the_body_when_the_header_is_missing() -> None:
    body = {"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information",
            "request_id": "rid-in-body"}
    with answering(401, body) as gateway, Simulator({"p1": []}) as sim:
        client = client_for(sim, endpoint=gateway)
        result = client.sweep_project("p1", far())
        client.close()
    assert not result.ok
    assert result.error == ("authentication failed: HTTP 401 APIG.0301: Incorrect IAM authentication information "
                            "(request_id=rid-in-body)")


def test_redirects_are_not_followed_so_no_token_travels_elsewhere() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{target.server_address[1]}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    redirecting = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (target, redirecting):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    users = {("acme", "monitor"): "s3cret-Pa55"}
    try:
        with Simulator({"p1": jobs(3)}, credentials={}, iam_users=users) as iam:
            client = client_for(iam, ak=None, sk=None, iam_username="monitor", iam_password="s3cret-Pa55",
                                iam_domain="acme", iam_endpoint=iam.url,
                                endpoint=f"http://127.0.0.1:{redirecting.server_address[1]}")
            result = client.sweep_project("p1", far())
            client.close()
    finally:
        for server in (target, redirecting):
            server.shutdown()
            server.server_close()
    assert not result.ok and "HTTP 307" in (result.error or "")
    assert seen == []  # the token never left for the Location
