"""The signer against the official SDK's, and the IAM token cache."""

from __future__ import annotations

import threading
import time

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from pydantic import SecretStr

from exporter.dli import schema
from exporter.dli.auth import AccessKey, ProjectToken, Token, TokenCache
from exporter.dli.errors import Failure
from exporter.dli.signer import canonical_query, canonical_uri
from exporter.dli.transport import Call
from exporter.domain import Deadline

AK = "HPUAXXXXEXAMPLEKEY01"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
FIXED = 1_764_000_000.0  # a fixed signing moment, so both signers see the same X-Sdk-Date
FAR = Deadline(1e12, 1e12)  # a deadline no test reaches

CASES = [
    ("https://dli.cn-north-4.myhuaweicloud.com", "0123456789abcdef", [("limit", "100"), ("offset", "0")]),
    ("https://dli.cn-north-4.myhuaweicloud.com", "p1", [("order", "asc"), ("show_detail", True), ("limit", "100")]),
    ("https://dli.ap-southeast-1.myhuaweicloud.com", "p1", [("name", "orders enrich job"), ("offset", "300")]),
    ("https://dli.cn-north-4.myhuaweicloud.com", "p1", [("name", "订单-实时~作业"), ("queue_name", "队列 1")]),
    ("https://dli.cn-north-4.myhuaweicloud.com", "p1", [("tags", "team=risk"), ("user_name", "a+b&c=d/e?f")]),
    ("https://dli.cn-north-4.myhuaweicloud.com", "p1", [("name", "~tilde~"), ("status", "job_running"),
                                                         ("job_type", "flink_sql_job"), ("limit", "1")]),
    ("http://127.0.0.1:8080", "proj-with-dash_and_underscore", [("show_detail", False), ("name", "")]),
    ("https://dli.cn-north-4.myhuaweicloud.com", "p1", []),
]


def _call(base: str, project: str, params: list[tuple[str, object]]) -> Call:
    text_params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params]
    url = schema.url(base, schema.project_path(project, "streaming/jobs"), text_params)
    return Call.get(url, project, {schema.PROJECT_HEADER: project})


def _ours(base: str, project: str, params: list[tuple[str, object]],
          token: str | None = None) -> tuple[str, dict[str, str]]:
    """Our Authorization header for the call, and every header the call then carries."""
    key = AccessKey(ak=AK, sk=SecretStr(SK), security_token=SecretStr(token) if token else None, wall=lambda: FIXED)
    call = _call(base, project, params)
    added = key.authorize(call, FAR).headers
    return added["Authorization"], {**call.headers, **added}


def _official(base: str, project: str, params: list[tuple[str, object]], headers: dict[str, str]) -> str:
    scheme, host = base.split("://")
    request = SdkRequest(method="GET", schema=scheme, host=host,
                         resource_path=f"/v1.0/{project}/streaming/jobs",
                         query_params=list(params), header_params={k: v for k, v in headers.items()
                                                                   if k != "Authorization"}, body="")
    signed = Signer(BasicCredentials(AK, SK)).sign(request)
    return str(signed.header_params["Authorization"])


@pytest.mark.parametrize(("base", "project", "params"), CASES)
def test_signature_matches_official_sdk(base: str, project: str, params: list[tuple[str, object]]) -> None:
    ours, headers = _ours(base, project, params)
    assert headers["X-Sdk-Date"] == time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(FIXED))
    assert headers["Host"] == base.split("://")[1]
    assert ours == _official(base, project, params, headers)


def test_signature_with_security_token_matches_official_sdk() -> None:
    base, project, params = CASES[1]
    ours, headers = _ours(base, project, params, token="temporary-token-value")
    assert headers["X-Security-Token"] == "temporary-token-value"
    assert "x-security-token" in ours.split("SignedHeaders=")[1]
    assert ours == _official(base, project, params, headers)


def test_signature_changes_with_any_signed_part() -> None:
    base, project, params = CASES[0]
    reference, _ = _ours(base, project, params)
    assert _ours(base, project, [("limit", "99"), ("offset", "0")])[0] != reference
    assert _ours(base, "other", params)[0] != reference
    assert _ours(base.replace("cn-north-4", "cn-east-3"), project, params)[0] != reference


def test_each_try_is_signed_afresh() -> None:
    """A retried call gets a new date and signature, computed over the call's own headers only."""
    call = _call("http://127.0.0.1:1", "p1", [("limit", "100")])
    clock = iter([FIXED, FIXED + 60, FIXED + 120])
    key = AccessKey(ak=AK, sk=SecretStr(SK), wall=lambda: next(clock))
    first, second = (key.authorize(call, FAR).headers for _ in range(2))
    assert first["X-Sdk-Date"] != second["X-Sdk-Date"] and first["Authorization"] != second["Authorization"]
    assert "authorization" not in second["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert key.refused(key.authorize(call, FAR), "rid") is False  # a refused signature is refused again


def test_canonical_pieces() -> None:
    assert canonical_uri("/v1.0/p1/streaming/jobs") == "/v1.0/p1/streaming/jobs/"
    assert canonical_uri("/a%20b/") == "/a%20b/"
    assert canonical_query("b=2&a=1&c=x%20y") == "a=1&b=2&c=x%20y"
    assert canonical_query("") == ""


def test_the_method_is_described_without_its_secret() -> None:
    key = AccessKey(ak=AK, sk=SecretStr(SK), security_token=SecretStr("tok"))
    assert key.describe() == "AK/SK, temporary (HPUA...)" and key.identity == AK
    assert SK not in repr(key) and "tok" not in repr(key) and AK not in repr(key)


class _Fetcher:
    def __init__(self, lifetime: float = 3600.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.lock = threading.Lock()

    def __call__(self, deadline: Deadline) -> Token:
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(0.01)  # a login takes a moment: concurrent callers must wait, not log in too
        return Token(SecretStr(f"token-{n}"), time.time() + self.lifetime)


def got(cache: TokenCache) -> tuple[SecretStr, int, bool]:
    token = cache.get(FAR)
    assert not isinstance(token, Failure)
    return token


def test_token_is_cached_until_shortly_before_expiry() -> None:
    now = [1000.0]
    logins = []

    def fetch(deadline: Deadline) -> Token:
        logins.append(now[0])
        return Token(SecretStr(f"t{len(logins)}"), now[0] + 3600)

    cache = TokenCache(fetch, refresh_before=300, clock=lambda: now[0])
    first, gen1, fresh1 = got(cache)
    again, gen2, fresh2 = got(cache)
    assert (fresh1, fresh2) == (True, False)
    assert (first.get_secret_value(), gen1) == (again.get_secret_value(), gen2)
    now[0] += 3600 - 301
    assert got(cache)[1] == gen1
    now[0] += 2  # inside the refresh margin
    token, gen3, _ = got(cache)
    assert (token.get_secret_value(), gen3) == ("t2", gen1 + 1)
    assert logins == [1000.0, 1000.0 + 3600 - 299]


def test_concurrent_callers_share_one_login() -> None:
    fetch = _Fetcher()
    cache = TokenCache(fetch)
    threads = [threading.Thread(target=cache.get, args=(FAR,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fetch.calls == 1


def test_a_refusal_drops_only_the_refused_generation() -> None:
    fetch = _Fetcher()
    cache = TokenCache(fetch)
    cache.get(FAR)  # a token from an earlier call
    auth = ProjectToken(cache, "p1")
    call = _call("http://127.0.0.1", "p1", [])
    old = auth.authorize(call, FAR)
    assert not isinstance(old, Failure) and old.headers == {"X-Auth-Token": "token-1"} and not old.fresh
    assert auth.refused(old, "rid") is True  # an old token was refused: a fresh one may succeed
    new = auth.authorize(call, FAR)
    assert not isinstance(new, Failure) and new.headers == {"X-Auth-Token": "token-2"} and new.fresh
    assert auth.refused(new, "rid") is False  # a token refused right after its login: no third login
    # Another thread that saw the old token's 401 late must not throw away the new one.
    cache.invalidate(1)
    assert got(cache)[0].get_secret_value() == "token-3"  # the refused fresh one was dropped
    assert fetch.calls == 3
