"""Authentication methods, IAM login and the reader's driver, over fake transports: no network.

The same paths run over real HTTP in test_client.py and test_faults.py; here each decision is
pinned down on its own, fast enough for ``make mutate``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import pytest
from pydantic import SecretStr

from exporter.dli import auth, schema
from exporter.dli.auth import AccessKey, IamPassword, ProjectToken
from exporter.dli.errors import Failure, Outcome
from exporter.dli.holdback import Holdback
from exporter.dli.reader import READS, ListRequest, Reader
from exporter.dli.transport import Answer, Authorization, Authorizer, Call
from exporter.domain import Deadline, Target
from exporter.resources import queues as queues_resource
from exporter.resources.base import Options
from exporter.resources.jobs.record import parse_page
from exporter.workers import DaemonPool
from tests.helpers import captured_logs, job

NOW = 1_764_000_000.0
TOKEN_URL = "http://iam.invalid/v3/auth/tokens"
DEADLINE = Deadline.after(3600)  # no test comes near it
JOBS = ListRequest("jobs", "streaming/jobs", (("queue_name", "q1"),), parse_page, attrgetter("job_id"))


def target(pid: str = "p1") -> Target:
    return Target(pid, "http://dli.invalid")


class Stats:
    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []

    def observe(self, account: str, code: str, seconds: float) -> None:
        pass

    def retried(self, account: str) -> None:
        pass

    def logged_in(self, account: str, code: str) -> None:
        self.logins.append((account, code))


class Poster:
    """A transport whose post() answers from a script, recording what it was sent."""

    def __init__(self, *answers: Answer | Failure) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any], Deadline]] = []

    def post(self, url: str, body: bytes, *, deadline: Deadline) -> Answer | Failure:
        self.sent.append((url, json.loads(body), deadline))
        return self.answers.pop(0)


def answer(status: int, payload: Any = None, headers: dict[str, str] | None = None, rid: str = "r1") -> Answer:
    return Answer(status, "Reason", headers or {}, payload, rid)


def iam(poster: Poster, stats: Stats | None = None) -> IamPassword:
    return IamPassword(username="monitor", password=SecretStr("pw-Secret-1"), domain="acme", token_url=TOKEN_URL,
                       transport=poster, counter=stats or Stats(), wall=lambda: NOW)  # type: ignore[arg-type]


def login_answer(token: str) -> Answer:
    return answer(201, {"token": {"expires_at": "2099-01-01T00:00:00Z"}}, {schema.IAM_TOKEN_HEADER: token})


def call(pid: str = "p1") -> Call:
    return Call.get(f"http://dli.invalid/v1.0/{pid}/streaming/jobs", pid, {schema.PROJECT_HEADER: pid})


def test_the_methods_are_chosen_through_one_map() -> None:
    assert {"aksk": AccessKey, "iam_password": IamPassword} == auth.METHODS
    key = auth.build("aksk", {"ak": "AKEXAMPLE", "sk": SecretStr("sk")}, transport=Poster(),  # type: ignore[arg-type]
                     counter=Stats())
    assert isinstance(key, AccessKey) and key.describe() == "AK/SK (AKEX...)"


def test_an_access_key_signs_for_every_project_with_one_signer() -> None:
    key = AccessKey(ak="AKEXAMPLE", sk=SecretStr("sk"))
    assert key.authorizer("p1") is key.authorizer("p2") is key


def test_an_iam_credential_keeps_one_token_per_project_and_logs_in_once_each() -> None:
    poster = Poster(login_answer("tok-p1"), login_answer("tok-p2"))
    method = iam(poster)
    sent = {}
    for pid in ("p1", "p2", "p1"):
        got = method.authorizer(pid).authorize(call(pid), DEADLINE)
        assert isinstance(got, Authorization)
        sent.setdefault(pid, []).append(got.headers[schema.AUTH_TOKEN_HEADER])
    assert [body["auth"]["scope"] for _, body, _ in poster.sent] == [{"project": {"id": "p1"}},
                                                                      {"project": {"id": "p2"}}]
    assert sent == {"p1": ["tok-p1", "tok-p1"], "p2": ["tok-p2"]}
    assert method.describe() == "IAM password (acme/monitor)" and "pw-Secret-1" not in repr(method)


def test_a_forgotten_project_logs_in_again() -> None:
    poster = Poster(login_answer("t1"), login_answer("t2"))
    method = iam(poster)
    method.authorizer("p1").authorize(call(), DEADLINE)
    method.forget("p1")
    method.authorizer("p1").authorize(call(), DEADLINE)
    assert len(poster.sent) == 2


def test_a_refused_token_is_dropped_and_logged_once_with_the_request_id() -> None:
    poster = Poster(login_answer("t1"), login_answer("t2"))
    method = iam(poster)
    method.authorizer("p1").authorize(call(), DEADLINE)  # an earlier call logged in
    authorizer = method.authorizer("p1")
    sent = authorizer.authorize(call(), DEADLINE)
    assert isinstance(sent, Authorization)
    with captured_logs("info") as log:
        assert authorizer.refused(sent, "rid-9") is True
    [line] = log.getvalue().splitlines()
    assert ' msg="IAM token rejected, logging in again" project_id=p1 request_id=rid-9' in line
    again = authorizer.authorize(call(), DEADLINE)
    assert isinstance(again, Authorization) and again.headers[schema.AUTH_TOKEN_HEADER] == "t2"


def test_a_token_that_was_never_sent_is_not_refused() -> None:
    """A login that failed sent no token: no second login on the same call."""
    authorizer = ProjectToken(auth.TokenCache(lambda deadline: Failure(Outcome.AUTH, "no")), "p1")
    assert isinstance(authorizer.authorize(call(), DEADLINE), Failure)
    assert authorizer.refused(Authorization({}), "rid") is False


def test_iam_login_sends_the_documented_body_and_takes_the_token_from_the_header() -> None:
    poster = Poster(answer(201, {"token": {"expires_at": "2026-11-27T01:00:00.000000Z"}},
                           {schema.IAM_TOKEN_HEADER: "MIIsecret"}))
    stats = Stats()
    token = iam(poster, stats).login("p1", DEADLINE)
    assert not isinstance(token, Failure)
    assert token.value.get_secret_value() == "MIIsecret"
    assert token.expires_at == 1_795_741_200.0  # 2026-11-27T01:00:00Z
    [(url, body, deadline)] = poster.sent
    assert (url, deadline) == (TOKEN_URL, DEADLINE)
    assert body == {"auth": {
        "identity": {"methods": ["password"],
                     "password": {"user": {"name": "monitor", "password": "pw-Secret-1", "domain": {"name": "acme"}}}},
        "scope": {"project": {"id": "p1"}}}}
    assert stats.logins == [("p1", "201")]


def test_iam_login_without_an_expiry_assumes_a_shorter_life() -> None:
    token = iam(Poster(answer(201, {}, {schema.IAM_TOKEN_HEADER: "t"}))).login("p1", DEADLINE)
    assert not isinstance(token, Failure) and token.expires_at == NOW + 12 * 3600


@pytest.mark.parametrize(("given", "outcome", "message", "code"), [
    (answer(401, {"error": {"code": 401, "message": "The username or password is wrong."}}), Outcome.AUTH,
     "IAM login failed: The username or password is wrong.", "401"),
    (answer(503, None), Outcome.RETRY, "IAM login failed: Reason", "503"),
    (answer(201, {}), Outcome.FATAL, "IAM login failed: no token in the answer", "201"),
    (Failure(Outcome.RETRY, "timed out"), Outcome.RETRY, "IAM login failed: timed out", "error"),
])
def test_iam_login_failures(given: Answer | Failure, outcome: Outcome, message: str, code: str) -> None:
    stats = Stats()
    failure = iam(Poster(given), stats).login("p1", DEADLINE)
    assert isinstance(failure, Failure) and failure.outcome is outcome and failure.message == message
    assert stats.logins == [("p1", code)]
    assert "pw-Secret-1" not in str(failure)


# --- the reader's driver ---

class Fetcher:
    """A transport whose fetch() serves pages of a job list through the given parser."""

    def __init__(self, pages: Callable[[int], Any]) -> None:
        self.pages = pages
        self.urls: list[str] = []
        self.deadlines: list[Deadline] = []

    def fetch(self, sent: Call, authorizer: Authorizer, deadline: Deadline, parse: Callable[[Any], Any]) -> Any:
        self.urls.append(sent.url)
        self.deadlines.append(deadline)
        offset = int(sent.url.split("offset=")[1].split("&", maxsplit=1)[0])
        got = self.pages(offset)
        return got if isinstance(got, Failure) else parse(got)


def reader_for(fetcher: Fetcher, workers: int = 2) -> tuple[Reader, DaemonPool]:
    pool = DaemonPool(workers, "test-page")
    key = AccessKey(ak="AKEXAMPLE", sk=SecretStr("sk"))
    reader = Reader(fetcher, key.authorizer, Holdback("test"), pool, clock=lambda: 10.0,  # type: ignore[arg-type]
                    wall=lambda: NOW)
    return reader, pool


def listing(ids: range | list[int], total: int) -> dict[str, Any]:
    return {"is_success": "true", "job_list": {"total_count": total, "jobs": [job(i) for i in ids]}}


def test_the_reader_asks_for_each_page_with_the_lists_parameters() -> None:
    fetcher = Fetcher(lambda offset: listing(range(offset + 1, min(offset + 100, 150) + 1), 150))
    reader, pool = reader_for(fetcher)
    deadline = Deadline(20.0, 10.0, lambda: 10.0)
    result = reader.read(target(), JOBS, deadline)
    pool.shutdown()
    assert result.records is not None and sorted(j.job_id for j in result.records) == list(range(1, 151))
    assert (result.pages, result.total_count, result.finished_at, result.error) == (2, 150, NOW, None)
    assert sorted(fetcher.urls) == [
        "http://dli.invalid/v1.0/p1/streaming/jobs?limit=100&offset=0&order=asc&queue_name=q1",
        "http://dli.invalid/v1.0/p1/streaming/jobs?limit=100&offset=100&order=asc&queue_name=q1"]
    assert fetcher.deadlines == [deadline, deadline]  # the one deadline, passed down


def test_the_reader_reads_again_once_when_records_moved_then_gives_up() -> None:
    fetcher = Fetcher(lambda offset: listing(range(1, 100), 150) if offset == 0 else listing([], 150))
    reader, pool = reader_for(fetcher)
    with captured_logs("info") as log:
        result = reader.read(target(), JOBS, DEADLINE)
    pool.shutdown()
    assert not result.ok and result.error == "incomplete sweep: read 99 entries of 150"
    assert len(fetcher.urls) == READS  # each read stopped at the short first page
    moved = [line for line in log.getvalue().splitlines() if "moved" in line]
    assert len(moved) == READS - 1
    assert (' msg="records moved while paging, reading again" project_id=p1 list=jobs '
            'error="read 99 entries of 150"') in moved[0]


def test_the_reader_reports_an_api_error_as_the_project_down_with_its_fields_logged() -> None:
    error = Failure(Outcome.FATAL, "Parameter error.", status=400, error_code="DLI.0001", request_id="rid-7")
    reader, pool = reader_for(Fetcher(lambda offset: error))
    with captured_logs("info") as log:
        result = reader.read(target(), JOBS, DEADLINE)
    pool.shutdown()
    assert (result.records, result.error) == (None, "HTTP 400 DLI.0001: Parameter error. (request_id=rid-7)")
    [line] = [line for line in log.getvalue().splitlines() if "sweep failed" in line]
    assert "level=warning" in line and "project_id=p1" in line and "status=400" in line
    assert "error_code=DLI.0001" in line and "request_id=rid-7" in line


def test_the_api_code_and_request_id_reach_the_log_escaped() -> None:
    """What the API sends as its error code and request id is quoted in the log line as one
    printable line, as its message is."""
    error = Failure(Outcome.FATAL, "bad\nthing", status=400, error_code="DLI.\x1b[31m0001\r\n",
                    request_id="rid\nlevel=error forged=1")
    reader, pool = reader_for(Fetcher(lambda offset: error))
    with captured_logs("info") as log:
        result = reader.read(target(), JOBS, DEADLINE)
    pool.shutdown()
    [line] = log.getvalue().splitlines()
    assert "\x1b" not in line and "\r" not in line
    assert r'error_code="DLI.\u001b[31m0001\r\n"' in line
    assert r'request_id="rid\nlevel=error forged=1"' in line
    assert result.error is not None and "\n" not in result.error and "\x1b" not in result.error
    assert "rid\\nlevel=error forged=1" in result.error and "DLI.\\u001b[31m0001\\r\\n" in result.error


def test_a_page_that_raises_fails_the_read_not_the_reader() -> None:
    def boom(offset: int) -> Any:
        raise RuntimeError("bug")

    reader, pool = reader_for(Fetcher(boom))
    result = reader.read(target(), JOBS, DEADLINE)
    pool.shutdown()
    assert not result.ok and "RuntimeError('bug')" in (result.error or "")


def test_the_deadline_bounds_the_wait_for_pages() -> None:
    def slow(offset: int) -> Any:
        time.sleep(0.5)
        return listing(range(1, 10), 9)

    reader, pool = reader_for(Fetcher(slow), workers=1)
    started = time.monotonic()
    result = reader.read(target(), JOBS, Deadline.after(0.1))
    pool.shutdown()
    assert time.monotonic() - started < 0.4
    assert result.error == "scrape deadline reached while reading pages"


def test_a_list_without_paging_is_one_call() -> None:
    [queues] = queues_resource.RESOURCE.requests(Options())
    urls: list[str] = []

    class One:
        def fetch(self, sent: Call, authorizer: Authorizer, deadline: Deadline, parse: Callable[[Any], Any]) -> Any:
            urls.append(sent.url)
            return parse({"is_success": True, "queues": [{"queue_name": f"q{i}"} for i in range(150)]})

    pool = DaemonPool(1, "test-page")
    reader = Reader(One(), AccessKey(ak="AK", sk=SecretStr("s")).authorizer, Holdback("test"), pool)  # type: ignore[arg-type]
    result = reader.read(target(), queues, DEADLINE)
    pool.shutdown()
    assert urls == ["http://dli.invalid/v1.0/p1/queues?queue_type=all"]  # no limit or offset, however many
    assert result.records is not None and len(result.records) == 150 and result.pages == 1
