"""SDK-HMAC-SHA256, as ``huaweicloudsdkcore/signer/signer.py`` signs a request, step for step
(tests compare its ``Authorization`` header with the official signer's). Pure functions of the
request and the key: nothing here sends anything."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def _encode(text: str) -> str:
    # The SDK's _url_encode: everything but unreserved characters and '~' is escaped, '/' included.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(query: str) -> str:
    """Sorted ``key=value`` pairs, each side percent-encoded, as the SDK builds them."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote(key), unquote(value)))
    # The SDK sorts the raw (key, value) pairs, then encodes them.
    pairs.sort()
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    # The SDK signs every header except those whose name holds an underscore.
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_request(method: str, url: str, headers: Mapping[str, str],
                      body: bytes | str | None) -> tuple[str, list[str]]:
    parts = urlsplit(url)
    names = signed_header_names(headers)
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    if body:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        payload_hash = hashlib.sha256(raw).hexdigest()
    else:
        payload_hash = EMPTY_BODY_SHA256
    text = "\n".join([method.upper(), canonical_uri(parts.path or "/"), canonical_query(parts.query),
                      canonical_headers, ";".join(names), payload_hash])
    return text, names


def sdk_date(now: float | None = None) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(time.time() if now is None else now))


def authorization(ak: str, sk: bytes, *, date: str, method: str, url: str, headers: Mapping[str, str],
                  body: bytes | str | None) -> str:
    """The ``Authorization`` header of a request whose headers (``X-Sdk-Date: date`` and ``Host``
    among them) are all signed."""
    text, names = canonical_request(method, url, headers, body)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{date}\n{digest}"
    signature = hmac.new(sk, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(names)}, Signature={signature}"
