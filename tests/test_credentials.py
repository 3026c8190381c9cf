"""The credentials registry, IAM login and the reader's driver, over fake transports: no network.

The same paths run over real HTTP in test_client.py and test_faults.py; here each decision is
pinned down on its own, fast enough for ``make mutate``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from exporter.dli import schema
from exporter.dli.credentials import AkSkSigner, Credentials, IamLogin, Token, TokenAuth
from exporter.dli.errors import DliApiError, Outcome
from exporter.dli.reader import READS, Reader
from exporter.dli.transport import Answer
from exporter.domain import Credential, Page, Target, View
from exporter.settings import AccessKey, PasswordLogin
from exporter.workers import DaemonPool
from tests.helpers import captured_logs, job

KEY = Credential("aksk", "AKEXAMPLE")
IAM = Credential("iam", "acme/monitor")
LOGIN = PasswordLogin("monitor", SecretStr("pw-Secret-1"), "acme", "http://iam.invalid/v3/auth/tokens")
NOW = 1_764_000_000.0


def target(pid: str = "p1", credential: Credential = KEY) -> Target:
    return Target(pid, "http://dli.invalid", credential)


class Stats:
    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []

    def logged_in(self, project_id: str, code: str) -> None:
        self.logins.append((project_id, code))


class Poster:
    """A transport whose post() answers from a script, recording what it was sent."""

    def __init__(self, *answers: Answer | DliApiError) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any], float]] = []

    def post(self, url: str, body: bytes, *, deadline: float) -> Answer:
        self.sent.append((url, json.loads(body), deadline))
        answer = self.answers.pop(0)
        if isinstance(answer, DliApiError):
            raise answer
        return answer


def answer(status: int, payload: Any = None, headers: dict[str, str] | None = None, rid: str = "r1") -> Answer:
    return Answer(status, "Reason", headers or {}, payload, rid)


def test_an_access_key_signs_for_every_project_with_one_signer() -> None:
    creds = Credentials({KEY: AccessKey("AKEXAMPLE", SecretStr("sk"))}, lambda *a: pytest.fail("no login"))
    first = creds.auth_for(target("p1"), 1.0)
    assert isinstance(first, AkSkSigner) and creds.auth_for(target("p2"), 2.0) is first
    assert first.reject("rid") is False  # a refused signature is refused again: no retry


def test_an_iam_credential_keeps_one_token_per_project_and_logs_in_once_each() -> None:
    logins: list[tuple[str, float]] = []

    def login(secret: PasswordLogin, tgt: Target, deadline: float) -> Token:
        assert secret is LOGIN
        logins.append((tgt.project_id, deadline))
        return Token(SecretStr(f"tok-{tgt.project_id}-{len(logins)}"), time.time() + 3600)

    creds = Credentials({IAM: LOGIN}, login)
    sent = {}
    for pid in ("p1", "p2", "p1"):
        auth = creds.auth_for(target(pid, IAM), 42.0)
        assert isinstance(auth, TokenAuth)
        request = requests.Request("GET", "http://dli.invalid/").prepare()
        auth(request)
        sent.setdefault(pid, []).append(request.headers["X-Auth-Token"])
    assert logins == [("p1", 42.0), ("p2", 42.0)]
    assert sent == {"p1": ["tok-p1-1", "tok-p1-1"], "p2": ["tok-p2-2"]}


def test_an_unknown_credential_is_a_bug_not_a_guess() -> None:
    creds = Credentials({KEY: AccessKey("AKEXAMPLE", SecretStr("sk"))}, lambda *a: pytest.fail("no login"))
    with pytest.raises(KeyError):
        creds.auth_for(target("p1", IAM), 1.0)


def test_a_rejected_token_is_dropped_and_logged_once_with_the_request_id() -> None:
    tokens = iter(["t1", "t2"])
    creds = Credentials({IAM: LOGIN}, lambda *a: Token(SecretStr(next(tokens)), time.time() + 3600))
    request = requests.Request("GET", "http://dli.invalid/").prepare()
    creds.auth_for(target("p1", IAM), 1.0)(request)  # an earlier call logged in
    auth = creds.auth_for(target("p1", IAM), 1.0)
    auth(request)
    with captured_logs("info") as log:
        assert auth.reject("rid-9") is True
    assert log.getvalue().splitlines() == [
        line for line in log.getvalue().splitlines()
        if ' msg="IAM token rejected, logging in again" project_id=p1 request_id=rid-9' in line]
    assert len(log.getvalue().splitlines()) == 1
    auth(request)
    assert request.headers["X-Auth-Token"] == "t2"  # the next call logged in again


def test_a_token_that_was_never_sent_is_not_rejected() -> None:
    """A login that failed sent no token: no second login on the same call."""
    creds = Credentials({IAM: LOGIN}, lambda *a: Token(SecretStr("t"), time.time() + 3600))
    auth = creds.auth_for(target("p1", IAM), 1.0)
    assert auth.reject("rid") is False


def test_iam_login_sends_the_documented_body_and_takes_the_token_from_the_header() -> None:
    poster = Poster(answer(201, {"token": {"expires_at": "2026-11-27T01:00:00.000000Z"}},
                           {schema.IAM_TOKEN_HEADER: "MIIsecret"}))
    stats = Stats()
    token = IamLogin(poster, stats, wall=lambda: NOW)(LOGIN, target("p1", IAM), 9.0)  # type: ignore[arg-type]
    assert token.value.get_secret_value() == "MIIsecret"
    assert token.expires_at == 1_795_741_200.0  # 2026-11-27T01:00:00Z
    [(url, body, deadline)] = poster.sent
    assert (url, deadline) == (LOGIN.token_url, 9.0)
    assert body == {"auth": {
        "identity": {"methods": ["password"],
                     "password": {"user": {"name": "monitor", "password": "pw-Secret-1", "domain": {"name": "acme"}}}},
        "scope": {"project": {"id": "p1"}}}}
    assert stats.logins == [("p1", "201")]


def test_iam_login_without_an_expiry_assumes_a_shorter_life() -> None:
    poster = Poster(answer(201, {}, {schema.IAM_TOKEN_HEADER: "t"}))
    token = IamLogin(poster, Stats(), wall=lambda: NOW)(LOGIN, target("p1", IAM), 9.0)  # type: ignore[arg-type]
    assert token.expires_at == NOW + 12 * 3600


@pytest.mark.parametrize(("given", "outcome", "message", "code"), [
    (answer(401, {"error": {"code": 401, "message": "The username or password is wrong."}}), Outcome.AUTH,
     "IAM login failed: The username or password is wrong.", "401"),
    (answer(503, None), Outcome.RETRY, "IAM login failed: Reason", "503"),
    (answer(201, {}), Outcome.FATAL, "IAM login failed: no token in the answer", "201"),
    (DliApiError("timed out", Outcome.RETRY), Outcome.RETRY, "IAM login failed: timed out", "error"),
])
def test_iam_login_failures(given: Answer | DliApiError, outcome: Outcome, message: str, code: str) -> None:
    stats = Stats()
    with pytest.raises(DliApiError) as info:
        IamLogin(Poster(given), stats, wall=lambda: NOW)(LOGIN, target("p1", IAM), 9.0)  # type: ignore[arg-type]
    assert info.value.outcome is outcome and info.value.error_msg == message
    assert stats.logins == [("p1", code)]
    assert "pw-Secret-1" not in str(info.value)


# --- the reader's driver ---

class Fetcher:
    """A transport whose fetch() serves pages of a job list through the given parser."""

    def __init__(self, pages: Callable[[int], Any]) -> None:
        self.pages = pages
        self.urls: list[str] = []

    def fetch(self, url: str, *, project_id: str, auth: Any, deadline: float, parse: Callable[[Any], Page]) -> Page:
        self.urls.append(url)
        offset = int(url.split("offset=")[1].split("&", maxsplit=1)[0])
        got = self.pages(offset)
        if isinstance(got, DliApiError):
            raise got
        return parse(got)


def reader_for(fetcher: Fetcher, filters: dict[str, str] | None = None) -> tuple[Reader, DaemonPool]:
    pool = DaemonPool(2, "test-page")
    creds = Credentials({KEY: AccessKey("AKEXAMPLE", SecretStr("sk"))}, lambda *a: pytest.fail("no login"))
    return Reader(fetcher, creds, pool, filters or {}, clock=lambda: 10.0, wall=lambda: NOW), pool  # type: ignore[arg-type]


def listing(ids: Sequence[int], total: int) -> dict[str, Any]:
    return {"is_success": "true", "job_list": {"total_count": total, "jobs": [job(i) for i in ids]}}


def test_the_reader_asks_for_each_page_in_the_view_with_the_filters() -> None:
    fetcher = Fetcher(lambda offset: listing(range(offset + 1, min(offset + 100, 150) + 1), 150))
    reader, pool = reader_for(fetcher, {"queue_name": "q1"})
    result = reader.read(target(), View.DETAIL, 20.0)
    pool.shutdown()
    assert result.ok and sorted(j.job_id for j in result.jobs or []) == list(range(1, 151))
    assert (result.pages, result.total_count, result.finished_at, result.error) == (2, 150, NOW, None)
    assert sorted(fetcher.urls) == [
        "http://dli.invalid/v1.0/p1/streaming/jobs?limit=100&offset=0&order=asc&queue_name=q1&show_detail=true",
        "http://dli.invalid/v1.0/p1/streaming/jobs?limit=100&offset=100&order=asc&queue_name=q1&show_detail=true"]


def test_the_reader_reads_again_once_when_jobs_moved_then_gives_up() -> None:
    fetcher = Fetcher(lambda offset: listing(range(1, 100), 150) if offset == 0 else listing([], 150))
    reader, pool = reader_for(fetcher)
    with captured_logs("info") as log:
        result = reader.read(target(), View.SUMMARY, 20.0)
    pool.shutdown()
    assert not result.ok and result.error == "incomplete sweep: read 99 entries of 150"
    assert len(fetcher.urls) == READS  # each read stopped at the short first page
    moved = [line for line in log.getvalue().splitlines() if "moved" in line]
    assert len(moved) == READS - 1
    assert (' msg="jobs moved while paging, reading again" project_id=p1 view=summary '
            'error="read 99 entries of 150"') in moved[0]


def test_the_reader_reports_an_api_error_as_the_project_down_with_its_fields_logged() -> None:
    error = DliApiError("Parameter error.", Outcome.FATAL, status=400, error_code="DLI.0001", request_id="rid-7")
    reader, pool = reader_for(Fetcher(lambda offset: error))
    with captured_logs("info") as log:
        result = reader.read(target(), View.SUMMARY, 20.0)
    pool.shutdown()
    assert (result.jobs, result.error) == (None, "HTTP 400 DLI.0001: Parameter error. (request_id=rid-7)")
    [line] = [line for line in log.getvalue().splitlines() if "sweep failed" in line]
    assert "level=warning" in line and "project_id=p1" in line and "status=400" in line
    assert "error_code=DLI.0001" in line and "request_id=rid-7" in line


def test_a_page_that_raises_something_else_fails_the_read_not_the_reader() -> None:
    def boom(offset: int) -> Any:
        raise RuntimeError("bug")

    reader, pool = reader_for(Fetcher(boom))
    result = reader.read(target(), View.SUMMARY, 20.0)
    pool.shutdown()
    assert not result.ok and "RuntimeError('bug')" in (result.error or "")


def test_the_deadline_bounds_the_wait_for_pages() -> None:
    clock = iter([0.0, 0.0, 5.0, 5.0, 5.0, 5.0])

    def slow(offset: int) -> Any:
        time.sleep(0.5)
        return listing(range(1, 10), 9)

    pool = DaemonPool(1, "test-page")
    creds = Credentials({KEY: AccessKey("AKEXAMPLE", SecretStr("sk"))}, lambda *a: pytest.fail("no login"))
    reader = Reader(Fetcher(slow), creds, pool, {}, clock=lambda: next(clock, 5.0), wall=lambda: NOW)  # type: ignore[arg-type]
    started = time.monotonic()
    result = reader.read(target(), View.SUMMARY, 0.1)
    pool.shutdown()
    assert time.monotonic() - started < 0.4
    assert result.error == "scrape deadline reached while reading pages"
