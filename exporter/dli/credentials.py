"""Credentials: AK/SK request signing (SDK-HMAC-SHA256), IAM tokens, and the registry that
holds them, keyed by credential.

The signer follows ``huaweicloudsdkcore/signer/signer.py`` step for step (tests compare its
``Authorization`` header with the official one). It and the token sender are callables that take
a prepared request and return it signed, which is exactly the contract of a ``requests`` auth
object, so the transport passes them as ``auth=`` while this module stays free of any HTTP
library. An IAM token is scoped to one project, so a password credential keeps one token per
project; an access key signs for every project alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr

from ..domain import Credential, Target
from ..settings import AccessKey, PasswordLogin
from . import schema
from .errors import DliApiError, Outcome
from .transport import Auth, PreparedRequestLike, Transport

log = logging.getLogger(__name__)

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
TOKEN_REFRESH_BEFORE = 300.0  # fetch a new IAM token this long before the old one expires
ASSUMED_TOKEN_LIFE = 12 * 3600.0  # IAM tokens live 24 hours; when an answer gives no expiry, assume less

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
        for name in [k for k in headers if k.lower() in ("authorization", schema.SDK_DATE_HEADER.lower())]:
            del headers[name]  # a retried request is signed afresh
        headers[schema.SDK_DATE_HEADER] = sdk_date(self._clock())
        if not any(k.lower() == "host" for k in headers):
            headers["Host"] = urlsplit(url).netloc
        if self._security_token is not None:
            headers[schema.SECURITY_TOKEN_HEADER] = self._security_token.get_secret_value()
        headers["Authorization"] = self.authorization(request.method or "GET", url, headers, request.body)
        return request

    def reject(self, request_id: str) -> bool:
        """A refused signature: the same key would be refused again."""
        return False

    def authorization(self, method: str, url: str, headers: MutableMapping[str, str],
                      body: bytes | str | None) -> str:
        text, names = canonical_request(method, url, headers, body)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        string_to_sign = f"{ALGORITHM}\n{headers[schema.SDK_DATE_HEADER]}\n{digest}"
        key = self._sk.get_secret_value().encode("utf-8")
        signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{ALGORITHM} Access={self._ak}, SignedHeaders={';'.join(names)}, Signature={signature}"


@dataclass(frozen=True)
class Token:
    value: SecretStr
    expires_at: float  # epoch seconds


class TokenCache:
    """One IAM token, fetched on first use and again shortly before it expires or after a 401.

    ``fetch`` does the login (given the deadline of the call that needs it); the lock makes
    concurrent page fetches share one login instead of each logging in. Each token gets a
    generation number so that a 401 drops only the token that was actually rejected, not a newer
    one another thread fetched.
    """

    def __init__(self, fetch: Callable[[float], Token], refresh_before: float = TOKEN_REFRESH_BEFORE,
                 clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._clock = clock
        self._token: Token | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(cached={self._token is not None}, generation={self._generation})"

    def get(self, deadline: float) -> tuple[SecretStr, int, bool]:
        """The current token, its generation, and whether this call logged in for it (when there
        was none or it was old)."""
        with self._lock:
            token = self._token
            if token is not None and self._clock() < token.expires_at - self._refresh_before:
                return token.value, self._generation, False
            token = self._token = self._fetch(deadline)
            self._generation += 1
            return token.value, self._generation, True

    def invalidate(self, generation: int) -> None:
        """Forget the token of that generation, so that the next call logs in again."""
        with self._lock:
            if self._token is not None and self._generation == generation:
                self._token = None


class TokenAuth:
    """Sends the cached IAM token as ``X-Auth-Token``: a ``requests`` auth callable like the signer,
    made for one call (its deadline bounds a login), so it knows which token that call sent."""

    def __init__(self, cache: TokenCache, deadline: float, project_id: str = "") -> None:
        self.cache = cache
        self._deadline = deadline
        self._project_id = project_id
        self._generation: int | None = None
        self._fresh = False

    def __repr__(self) -> str:
        return "TokenAuth(...)"

    def __call__(self, request: PreparedRequestLike) -> PreparedRequestLike:
        value, self._generation, self._fresh = self.cache.get(self._deadline)
        request.headers[schema.AUTH_TOKEN_HEADER] = value.get_secret_value()
        return request

    def reject(self, request_id: str) -> bool:
        """The API refused the last request sent with this object: drop that token, so that the
        next try logs in again. False when no token was sent (the login itself failed), and when
        the token came from a login for this very call: a token refused right after a fresh login
        means the user may not do this, and logging in again would only add a failure."""
        if self._generation is None:
            return False
        if self._fresh:
            self.cache.invalidate(self._generation)
            return False
        log.info("IAM token rejected, logging in again", extra={"project_id": self._project_id,
                                                                "request_id": request_id})
        self.cache.invalidate(self._generation)
        return True


class LoginStats(Protocol):
    def logged_in(self, project_id: str, code: str) -> None: ...


class IamLogin:
    """IAM password login, scoped to a target's project; the token arrives in a response header."""

    def __init__(self, transport: Transport, stats: LoginStats, wall: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._stats = stats
        self._wall = wall

    def __repr__(self) -> str:
        return "IamLogin(...)"

    def __call__(self, secret: PasswordLogin, target: Target, deadline: float) -> Token:
        pid = target.project_id
        body = json.dumps(schema.iam_password_request(
            secret.username, secret.password.get_secret_value(), secret.domain, pid)).encode()
        try:
            answer = self._transport.post(secret.token_url, body, deadline=deadline)
        except DliApiError as exc:
            self._stats.logged_in(pid, "error")
            raise DliApiError(f"IAM login failed: {exc.error_msg}", exc.outcome) from None
        finally:
            del body  # holds the password: drop it as soon as it is sent
        self._stats.logged_in(pid, str(answer.status))
        if answer.status not in (200, 201):
            err = answer.error(self._wall())
            raise DliApiError(f"IAM login failed: {err.error_msg}", err.outcome, status=err.status,
                              error_code=err.error_code, request_id=err.request_id)
        token = answer.headers.get(schema.IAM_TOKEN_HEADER)
        if not token:
            raise DliApiError("IAM login failed: no token in the answer", Outcome.FATAL, status=answer.status,
                              request_id=answer.request_id)
        expires = _parse_expiry(schema.iam_token_expiry(answer.payload))
        log.debug("IAM login", extra={"project_id": pid})
        return Token(SecretStr(token), expires if expires is not None else self._wall() + ASSUMED_TOKEN_LIFE)


Login = Callable[[PasswordLogin, Target, float], Token]


class Credentials:
    """The secret behind each credential, and what signs a target's calls with it.

    Keyed by credential, not by project: an access key's signer serves every project it is used
    for, and what concerns a key as a whole (the gateway locks a key, not a project) has one home.
    """

    def __init__(self, secrets: Mapping[Credential, AccessKey | PasswordLogin], login: Login) -> None:
        self._secrets = dict(secrets)
        self._login = login
        self._lock = threading.Lock()
        self._signers: dict[Credential, AkSkSigner] = {}
        self._tokens: dict[tuple[Credential, str], TokenCache] = {}  # IAM tokens are project-scoped

    def __repr__(self) -> str:
        return f"Credentials({sorted(c.kind for c in self._secrets)})"

    def forget(self, target: Target) -> None:
        """Drop ``target``'s IAM token (it has gone unused); a signer serves every project alike."""
        with self._lock:
            self._tokens.pop((target.credential, target.project_id), None)

    def auth_for(self, target: Target, deadline: float) -> Auth:
        """What signs one call for ``target``; a login (for IAM) ends by ``deadline``."""
        secret = self._secrets[target.credential]
        if isinstance(secret, AccessKey):
            with self._lock:
                signer = self._signers.get(target.credential)
                if signer is None:
                    signer = self._signers[target.credential] = AkSkSigner(secret.ak, secret.sk,
                                                                           secret.security_token)
            return signer
        key = (target.credential, target.project_id)
        with self._lock:
            cache = self._tokens.get(key)
            if cache is None:
                cache = self._tokens[key] = TokenCache(lambda until: self._login(secret, target, until))
        return TokenAuth(cache, deadline, target.project_id)


def _parse_expiry(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
