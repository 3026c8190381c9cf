"""Guarding the routes with the web configuration: rate limit, basic auth and extra headers.

``/healthz`` stays open, so liveness probes need no credentials. Passwords are bcrypt hashes; a
check is remembered under a digest of the credentials (Prometheus sends the same ones on every
scrape) and one runs at a time, so a flood of wrong guesses costs one core at most. An unknown
user is checked against a dummy hash of a random password, so answering takes as long as for a
known one and no password opens it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import bcrypt

from .config import WebConfig, WebConfigSource
from .replies import UNGUARDED, StartResponse, WsgiApp, plain


class _Bucket:
    """A token bucket: ``burst`` requests at once, then one per ``interval``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._at = time.monotonic()
        self._shape: tuple[float, int] = (0.0, 0)

    def take(self, interval: float, burst: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._shape != (interval, burst):  # new settings: start full
                self._shape, self._tokens, self._at = (interval, burst), float(burst), now
            self._tokens = min(float(burst), self._tokens + (now - self._at) / interval)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class Passwords:
    """bcrypt checks, remembered: a hash costs ~70 ms at cost 10, and Prometheus sends the same
    credentials on every scrape. One check runs at a time, so bad guesses cannot eat every core."""

    # For unknown users: the same work and the same answer as a wrong password. The password is
    # random, but even it must not let an unknown user in (verify() refuses unknown users first).
    DUMMY_PASSWORD = secrets.token_urlsafe(16)
    _DUMMY = bcrypt.hashpw(DUMMY_PASSWORD.encode(), bcrypt.gensalt(4))

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, bool] = OrderedDict()
        self._size = size

    def verify(self, users: Mapping[str, bytes], user: str, password: str) -> bool:
        hashed = users.get(user)
        secret = password.encode("utf-8", "surrogateescape")
        # The key is a digest, so no password is held in memory past this call.
        key = hashlib.sha256(b"\0".join([user.encode("utf-8", "surrogateescape"), secret, hashed or b""])).digest()
        with self._lock:
            known = self._seen.get(key)
            if known is not None:
                self._seen.move_to_end(key)
                return known
            try:
                ok = bcrypt.checkpw(secret, hashed or self._DUMMY) and hashed is not None
            except ValueError:
                ok = False
            self._seen[key] = ok
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return ok


class WebGuard:
    """WSGI middleware: rate limit, basic auth and extra headers from the current web config."""

    def __init__(self, app: WsgiApp, source: WebConfigSource) -> None:
        self._app = app
        self._source = source
        self._passwords = Passwords()
        self._bucket = _Bucket()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        config = self._source.current()
        if config.headers:
            inner = start_response

            def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                return inner(status, [*headers, *config.headers], *exc)

        path = environ.get("PATH_INFO") or "/"
        if path not in UNGUARDED:
            if config.rate_interval > 0 and not self._bucket.take(config.rate_interval, config.rate_burst):
                return plain(start_response, "429 Too Many Requests")
            if config.users and not self._authorized(config, environ.get("HTTP_AUTHORIZATION", "")):
                return plain(start_response, "401 Unauthorized",
                             extra=[("WWW-Authenticate", 'Basic realm="dli-exporter", charset="UTF-8"')])
        return self._app(environ, start_response)

    def _authorized(self, config: WebConfig, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # At the first colon: a user name has none, a password may (RFC 7617).
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        return self._passwords.verify(config.users, user, password)
