"""Authentication: AK/SK request signing (SDK-HMAC-SHA256) and the IAM token cache.

The signer follows ``huaweicloudsdkcore/signer/signer.py`` step for step (tests compare its
``Authorization`` header with the official one). It is a callable that takes a prepared request
and returns it signed, which is exactly the contract of a ``requests`` auth object, so the client
passes it as ``auth=`` while this module stays free of any HTTP library.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


class PreparedRequestLike(Protocol):
    """What the signer needs of a request (``requests.PreparedRequest`` fits)."""

    method: str | None
    url: str | None
    headers: MutableMapping[str, str]
    body: bytes | str | None


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


def signed_header_names(headers: MutableMapping[str, str]) -> list[str]:
    # The SDK signs every header except those whose name holds an underscore.
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_request(method: str, url: str, headers: MutableMapping[str, str],
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


class AkSkSigner:
    """Signs requests with an access key pair, as the official SDK does.

    Adds ``X-Sdk-Date``, ``Host`` and, for temporary credentials, ``X-Security-Token``, then the
    ``Authorization`` header over every header present at that moment.
    """

    def __init__(self, ak: str, sk: SecretStr, security_token: SecretStr | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._ak = ak
        self._sk = sk
        self._security_token = security_token
        self._clock = clock

    def __repr__(self) -> str:
        return f"AkSkSigner(ak={self._ak[:4]}..., temporary={self._security_token is not None})"

    def __call__(self, request: PreparedRequestLike) -> PreparedRequestLike:
        url = request.url or ""
        headers = request.headers
        for name in [k for k in headers if k.lower() in ("authorization", "x-sdk-date")]:
            del headers[name]  # a retried request is signed afresh
        headers["X-Sdk-Date"] = sdk_date(self._clock())
        if not any(k.lower() == "host" for k in headers):
            headers["Host"] = urlsplit(url).netloc
        if self._security_token is not None:
            headers["X-Security-Token"] = self._security_token.get_secret_value()
        headers["Authorization"] = self.authorization(request.method or "GET", url, headers, request.body)
        return request

    def authorization(self, method: str, url: str, headers: MutableMapping[str, str],
                      body: bytes | str | None) -> str:
        text, names = canonical_request(method, url, headers, body)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        string_to_sign = f"{ALGORITHM}\n{headers['X-Sdk-Date']}\n{digest}"
        key = self._sk.get_secret_value().encode("utf-8")
        signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{ALGORITHM} Access={self._ak}, SignedHeaders={';'.join(names)}, Signature={signature}"


@dataclass(frozen=True)
class Token:
    value: SecretStr
    expires_at: float  # epoch seconds


class TokenCache:
    """One IAM token, fetched on first use and again shortly before it expires or after a 401.

    ``fetch`` does the HTTP call (the client owns HTTP); the lock makes concurrent page fetches
    share one login instead of each logging in. Each token gets a generation number so that a
    401 drops only the token that was actually rejected, not a newer one another thread fetched.
    """

    def __init__(self, fetch: Callable[[], Token], refresh_before: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._clock = clock
        self._token: Token | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(cached={self._token is not None}, generation={self._generation})"

    def get(self) -> tuple[SecretStr, int]:
        """The current token and its generation, logging in when there is none or it is old."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at - self._refresh_before:
                token = self._token = self._fetch()
                self._generation += 1
            return token.value, self._generation

    def invalidate(self, generation: int) -> None:
        """Forget the token of that generation, so that the next call logs in again."""
        with self._lock:
            if self._token is not None and self._generation == generation:
                self._token = None


class TokenAuth:
    """Sends the cached IAM token as ``X-Auth-Token``; a ``requests`` auth callable like the signer.

    Requests are sent on the thread that prepares them, so a thread-local remembers which token
    this thread last sent, for :meth:`reject`.
    """

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache
        self._sent = threading.local()

    def __repr__(self) -> str:
        return "TokenAuth(...)"

    def __call__(self, request: PreparedRequestLike) -> PreparedRequestLike:
        value, generation = self.cache.get()
        self._sent.generation = generation
        request.headers["X-Auth-Token"] = value.get_secret_value()
        return request

    def reject(self) -> None:
        """The API answered 401 to the last request this thread sent: drop that token."""
        generation = getattr(self._sent, "generation", None)
        if generation is not None:
            self.cache.invalidate(generation)
