"""The server side of SDK-HMAC-SHA256, written from the algorithm's description (not from the
exporter's signer): the canonical request of a request as received, and its verification."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

MAX_CLOCK_SKEW = 15 * 60
_AUTHORIZATION = re.compile(r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)")

Denied = tuple[int, str, str]  # status, error code, message


def _q(text: str) -> str:
    return quote(text, safe="~")


def sign_request(sk: str, method: str, raw_path: str, *, headers: dict[str, str], names: list[str],
                 body: bytes, date: str) -> str:
    """The SDK-HMAC-SHA256 signature of a received request, computed server-side."""
    path, _, query = raw_path.partition("?")
    segments = [_q(s) for s in unquote(path).split("/")]
    uri = "/".join(segments)
    if not uri.endswith("/"):
        uri += "/"
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{_q(k)}={_q(v)}" for k, v in pairs)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    lines = [method.upper(), uri, canonical_query, canonical_headers, ";".join(names),
             hashlib.sha256(body).hexdigest()]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    to_sign = f"SDK-HMAC-SHA256\n{date}\n{digest}"
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def access_key(headers: dict[str, str]) -> str | None:
    """The access key a request claims to be signed with (lower-case header names), if any."""
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    return match.group(1) if match else None


def verify(method: str, raw_path: str, headers: dict[str, str], body: bytes, *, credentials: dict[str, str],
           temporary: dict[str, str], rotated: bool = False) -> Denied | None:
    """None when the request carries a valid signature of a known key, else why not. ``headers``
    have lower-case names. ``rotated``: the key's secret changed under the caller."""
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if not match:
        return 401, "APIGW.0301", "Incorrect IAM authentication information: no AK/SK signature."
    ak, signed, signature = match.groups()
    sk = credentials.get(ak)
    if sk is not None and rotated:
        sk += "-rotated"
    if sk is None:
        return 401, "APIGW.0301", "Incorrect IAM authentication information: unknown access key."
    names = signed.split(";")
    if "x-sdk-date" not in names or "host" not in names:
        return 401, "APIGW.0301", "Incorrect IAM authentication information: host and x-sdk-date must be signed."
    if ak in temporary and ("x-security-token" not in names or headers.get("x-security-token") != temporary[ak]):
        return 401, "APIGW.0301", "Incorrect IAM authentication information: security token is invalid."
    date = headers.get("x-sdk-date", "")
    try:
        when = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 401, "APIGW.0301", "Incorrect IAM authentication information: x-sdk-date is invalid."
    if abs(time.time() - when) > MAX_CLOCK_SKEW:
        return 401, "APIGW.0301", "Incorrect IAM authentication information: request expired."
    if any(n not in headers for n in names):
        return 401, "APIGW.0301", "Incorrect IAM authentication information: a signed header is missing."
    expected = sign_request(sk, method, raw_path, headers=headers, names=names, body=body, date=date)
    if not hmac.compare_digest(expected, signature):
        return 401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail."
    return None
