"""Authentication, one class per method: its secret, what authorizes a call with it, and how it is
described to people (never with the secret). :data:`METHODS` maps a method's name to its class;
the settings say which name and give its options, and nothing else anywhere asks which kind of
credential it holds.

* :class:`AccessKey` signs every call with an access key pair (SDK-HMAC-SHA256, see
  :mod:`.signer`); one signature fits every project.
* :class:`IamPassword` logs an IAM user in with a password and sends the token as
  ``X-Auth-Token``. A token is scoped to one project, so it keeps one per project, each fetched on
  first use and again shortly before it expires or after a refusal; and one scoped to the
  account, for IAM's own global calls (the project look-up).

A global call (IAM's, of no project) is authorized by :meth:`AuthMethod.global_authorizer`; a
signature for it must also carry the account's ``X-Domain-Id`` (:attr:`AuthMethod.needs_domain_id`),
which the caller looks up first, as the official SDK does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr

from ..domain import Clock, Deadline
from ..logs import one_line
from . import schema
from .errors import Failure, Outcome
from .signer import authorization, sdk_date
from .transport import Answer, Authorization, Authorizer, Call, Counter, Transport

log = logging.getLogger(__name__)

TOKEN_REFRESH_BEFORE = 300.0  # fetch a new IAM token this long before the old one expires
ASSUMED_TOKEN_LIFE = 12 * 3600.0  # IAM tokens live 24 hours; when an answer gives no expiry, assume less


class AuthMethod(ABC):
    """A way to authenticate: what the settings name it, who it is (the public half), and what
    authorizes a call for a project."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def identity(self) -> str:
        """The public half (an access key, or domain/user): names the credential in logs."""

    @abstractmethod
    def describe(self) -> str:
        """For people (``--check``): the kind and the public half, shortened; never the secret."""

    @property
    @abstractmethod
    def label(self) -> str:
        """The credential as a label value: enough to tell which it is, never the secret."""

    @classmethod
    @abstractmethod
    def create(cls, options: dict[str, Any], *, transport: Transport, counter: Counter) -> AuthMethod:
        """The method from the settings' options for it; a login's calls go over ``transport``."""

    @abstractmethod
    def authorizer(self, project_id: str) -> Authorizer:
        """What authorizes calls for ``project_id``."""

    @abstractmethod
    def forget(self, project_id: str) -> None:
        """Drop what is kept for ``project_id`` (it has gone unused)."""

    @abstractmethod
    def global_authorizer(self) -> Authorizer:
        """What authorizes IAM's global calls (of the account, no project)."""

    needs_domain_id: ClassVar[bool] = False  # global calls must carry X-Domain-Id (an AK/SK signature does)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class AccessKey(AuthMethod):
    """An access key pair, with the security token of temporary credentials. It is its own
    authorizer: a signature is computed per call and fits every project."""

    name = "aksk"

    def __init__(self, *, ak: str, sk: SecretStr, security_token: SecretStr | None = None,
                 wall: Clock = time.time) -> None:
        self._ak = ak
        self._sk = sk
        self._security_token = security_token
        self._wall = wall

    @classmethod
    def create(cls, options: dict[str, Any], *, transport: Transport, counter: Counter) -> AccessKey:
        return cls(**options)

    @property
    def identity(self) -> str:
        return self._ak

    @property
    def label(self) -> str:
        return f"{self._ak[:4]}..."  # an access key's prefix, as the log and --check show it

    def describe(self) -> str:
        kind = "AK/SK, temporary" if self._security_token is not None else "AK/SK"
        return f"{kind} ({one_line(self._ak[:4])}...)"

    def authorizer(self, project_id: str) -> AccessKey:
        return self

    def forget(self, project_id: str) -> None:
        """Nothing is kept per project: one signature fits them all."""

    needs_domain_id = True

    def global_authorizer(self) -> AccessKey:
        return self  # the call's own headers (X-Domain-Id, no X-Project-Id) are signed with it

    def authorize(self, call: Call, deadline: Deadline) -> Authorization:
        """``X-Sdk-Date``, ``Host``, the security token if any, and the ``Authorization`` header
        over every header the call carries with them."""
        added = {schema.SDK_DATE_HEADER: sdk_date(self._wall())}
        if not any(k.lower() == "host" for k in call.headers):
            added["Host"] = urlsplit(call.url).netloc
        if self._security_token is not None:
            added[schema.SECURITY_TOKEN_HEADER] = self._security_token.get_secret_value()
        headers = {**call.headers, **added}
        added["Authorization"] = authorization(self._ak, self._sk.get_secret_value().encode("utf-8"),
                                               date=added[schema.SDK_DATE_HEADER], method=call.method,
                                               url=call.url, headers=headers, body=call.body)
        return Authorization(added)

    def refused(self, authorization: Authorization, request_id: str) -> bool:
        """A refused signature: the same key would be refused again."""
        return False


@dataclass(frozen=True)
class Token:
    value: SecretStr
    expires_at: float  # epoch seconds


class TokenCache:
    """One IAM token, fetched on first use and again shortly before it expires or after a refusal.

    ``fetch`` does the login (given the deadline of the call that needs it); the lock makes
    concurrent page fetches share one login instead of each logging in. Each token gets a
    generation number so that a refusal drops only the token that was actually refused, not a
    newer one another thread fetched.
    """

    def __init__(self, fetch: Callable[[Deadline], Token | Failure], refresh_before: float = TOKEN_REFRESH_BEFORE,
                 clock: Clock = time.time) -> None:
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._clock = clock
        self._token: Token | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(cached={self._token is not None}, generation={self._generation})"

    def get(self, deadline: Deadline) -> tuple[SecretStr, int, bool] | Failure:
        """The current token, its generation, and whether this call logged in for it (when there
        was none or it was old); the login's failure when it failed."""
        with self._lock:
            token = self._token
            if token is not None and self._clock() < token.expires_at - self._refresh_before:
                return token.value, self._generation, False
            fetched = self._fetch(deadline)
            if isinstance(fetched, Failure):
                return fetched
            self._token = fetched
            self._generation += 1
            return fetched.value, self._generation, True

    def invalidate(self, generation: int) -> None:
        """Forget the token of that generation, so that the next call logs in again."""
        with self._lock:
            if self._token is not None and self._generation == generation:
                self._token = None


class ProjectToken:
    """Authorizes calls for one project (or, with ``project_id`` "", the account's global calls)
    with its IAM token, and drops that token when refused."""

    def __init__(self, cache: TokenCache, project_id: str) -> None:
        self._cache = cache
        self._project_id = project_id

    def __repr__(self) -> str:
        return f"ProjectToken({self._project_id})"

    def authorize(self, call: Call, deadline: Deadline) -> Authorization | Failure:
        got = self._cache.get(deadline)
        if isinstance(got, Failure):
            return got
        value, generation, fresh = got
        return Authorization({schema.AUTH_TOKEN_HEADER: value.get_secret_value()}, generation, fresh)

    def refused(self, authorization: Authorization, request_id: str) -> bool:
        """Drop the refused token, so that the next try logs in again. True (one more try) unless
        the token came from a login for this very call: a token refused right after a fresh login
        means the user may not do this, and logging in again would only add a failure."""
        if authorization.token is None:
            return False
        self._cache.invalidate(authorization.token)
        if authorization.fresh:
            return False
        log.info("IAM token rejected, logging in again", extra={"project_id": self._project_id,
                                                                "request_id": request_id})
        return True


class IamPassword(AuthMethod):
    """An IAM user's password login at ``token_url``, one project-scoped token per project."""

    name = "iam_password"

    def __init__(self, *, username: str, password: SecretStr, domain: str, token_url: str, transport: Transport,
                 counter: Counter, wall: Clock = time.time) -> None:
        self._username = username
        self._password = password
        self._domain = domain
        self._token_url = token_url
        self._transport = transport
        self._counter = counter
        self._wall = wall
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenCache] = {}
        self._account = TokenCache(lambda deadline: self.login(None, deadline))  # scoped to the domain

    @classmethod
    def create(cls, options: dict[str, Any], *, transport: Transport, counter: Counter) -> IamPassword:
        return cls(**options, transport=transport, counter=counter)

    @property
    def identity(self) -> str:
        return f"{self._domain}/{self._username}"

    @property
    def label(self) -> str:
        return self.identity

    def describe(self) -> str:
        return f"IAM password ({one_line(self._domain)}/{one_line(self._username)})"

    def authorizer(self, project_id: str) -> ProjectToken:
        with self._lock:
            cache = self._tokens.get(project_id)
            if cache is None:
                cache = self._tokens[project_id] = TokenCache(lambda deadline: self.login(project_id, deadline))
        return ProjectToken(cache, project_id)

    def forget(self, project_id: str) -> None:
        with self._lock:
            self._tokens.pop(project_id, None)

    def global_authorizer(self) -> ProjectToken:
        return ProjectToken(self._account, "")

    def login(self, project_id: str | None, deadline: Deadline) -> Token | Failure:
        """A token scoped to ``project_id``, or to the account (None); it arrives in a response header."""
        body = json.dumps(schema.iam_password_request(
            self._username, self._password.get_secret_value(), self._domain, project_id)).encode()
        answer = self._transport.post(self._token_url, body, deadline=deadline)
        del body  # holds the password: drop it as soon as it is sent
        account = project_id or ""
        if isinstance(answer, Failure):
            self._counter.logged_in(account, "error")
            return Failure(answer.outcome, f"IAM login failed: {answer.message}")
        self._counter.logged_in(account, str(answer.status))
        return self._token(answer)

    def _token(self, answer: Answer) -> Token | Failure:
        if answer.status not in (200, 201):
            failure = answer.failure(self._wall())
            return Failure(failure.outcome, f"IAM login failed: {failure.message}", status=failure.status,
                           error_code=failure.error_code, request_id=failure.request_id)
        token = answer.headers.get(schema.IAM_TOKEN_HEADER)
        if not token:
            return Failure(Outcome.FATAL, "IAM login failed: no token in the answer", status=answer.status,
                           request_id=answer.request_id)
        expires = _parse_expiry(schema.iam_token_expiry(answer.payload))
        return Token(SecretStr(token), expires if expires is not None else self._wall() + ASSUMED_TOKEN_LIFE)


METHODS: dict[str, type[AuthMethod]] = {AccessKey.name: AccessKey, IamPassword.name: IamPassword}


def build(method: str, options: dict[str, Any], *, transport: Transport, counter: Counter) -> AuthMethod:
    """The method the settings name, from its options; a login's calls go over ``transport``."""
    return METHODS[method].create(options, transport=transport, counter=counter)


def _parse_expiry(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
