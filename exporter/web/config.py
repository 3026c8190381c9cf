"""The web configuration file, in the Prometheus exporter toolkit's format (``--web.config.file``):
TLS, client certificates, basic auth users, headers and a rate limit, loaded and checked.

Operators reuse the file they already have for node_exporter. As in the toolkit, relative paths
are relative to the file, the file is re-read when it (or a certificate it names) changes, so
rotated certificates and passwords apply without a restart, and unknown keys are errors. What
Python's ``ssl`` cannot do is refused at load time with the reason, never silently weakened:
``RequestClientCert`` and ``RequireAnyClientCert`` (client certificates accepted unverified).
:mod:`exporter.web.guard` enforces the users, headers and rate limit; :mod:`exporter.web.server`
the TLS.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
DEFAULT_MIN_TLS = "TLS12"
DEFAULT_MAX_TLS = "TLS13"

_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's names of the TLS 1.2 cipher suites it offers, as OpenSSL names them (TLS 1.3 suites are not
# configurable in Go either).
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
_CURVES = {"CurveP256", "CurveP384", "CurveP521", "X25519"}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = {"RequestClientCert", "RequireAnyClientCert"}
_HEADERS = {"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
            "Strict-Transport-Security"}
_TLS_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
             "client_allowed_sans", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
             "curve_preferences"}
_BCRYPT = re.compile(rb"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
          "w": 604800.0, "y": 31536000.0}


class WebConfigError(ValueError):
    """The web configuration file cannot be used; the message says why, never a secret."""


@dataclass(frozen=True)
class WebConfig:
    """One loaded version of the file. ``users`` maps names to bcrypt hashes (kept out of repr)."""

    tls: ssl.SSLContext | None = None
    allowed_sans: frozenset[str] = frozenset()
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    rate_interval: float = 0.0
    rate_burst: int = 0
    watched: tuple[str, ...] = ()  # every file this version was read from


def _mapping(value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping")
    if allowed is not None:
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise WebConfigError(f"unknown field {unknown[0]!r} in {where}")
    return value


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebConfigError(f"{where} must be a string")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WebConfigError(f"{where} must be a list of strings")
    return value


def parse_duration(text: str) -> float:
    """A Prometheus duration such as 1m30s or 500ms, in seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise WebConfigError(f"rate_limit.interval: {text!r} is not a duration such as 1s or 500ms")
    return total


def load_web_config(path: str) -> WebConfig:
    """Read and check the file. Raises WebConfigError naming the field at fault."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebConfigError(f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WebConfigError("is not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise WebConfigError(f"is not valid YAML{where}") from None
    top = _mapping(raw, "the file", {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"})
    base = file.resolve().parent
    watched = [str(file)]
    tls_raw = _mapping(top.get("tls_server_config"), "tls_server_config", _TLS_KEYS)
    tls, sans = (_tls_context(tls_raw, base, watched) if tls_raw else (None, frozenset()))
    http = _mapping(top.get("http_server_config"), "http_server_config", {"http2", "headers"})
    if not isinstance(http.get("http2", True), bool):
        raise WebConfigError("http_server_config.http2 must be true or false")
    headers = []
    for name, value in _mapping(http.get("headers"), "http_server_config.headers").items():
        if name not in _HEADERS:
            raise WebConfigError(f"http_server_config.headers: {name!r} is not one of " + ", ".join(sorted(_HEADERS)))
        if _string(value, f"http_server_config.headers.{name}"):
            headers.append((str(name), str(value)))
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(top.get("basic_auth_users"), "basic_auth_users").items():
        digest = _string(hashed, f"basic_auth_users.{user}").encode()
        if not _BCRYPT.match(digest):
            # Never echo it: an operator may have pasted the password itself.
            raise WebConfigError(f"basic_auth_users.{user} is not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        users[str(user)] = digest
    rate = _mapping(top.get("rate_limit"), "rate_limit", {"interval", "burst"})
    interval = parse_duration(str(rate.get("interval", "0")))
    burst = rate.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise WebConfigError("rate_limit.burst must be a whole number, 0 or more")
    if interval > 0 and burst < 1:
        raise WebConfigError("rate_limit.burst must be at least 1 when rate_limit.interval is set")
    return WebConfig(tls, sans, users, tuple(headers), interval, burst, tuple(watched))


def _pem_or_file(tls: dict[str, Any], inline: str, file_key: str, base: Path, *, watched: list[str],
                 temporary: list[str]) -> str | None:
    """The path of a PEM; an inline PEM is written to a private temporary file, listed in ``temporary``."""
    text = _string(tls.get(inline), f"tls_server_config.{inline}")
    name = _string(tls.get(file_key), f"tls_server_config.{file_key}")
    if text and name:
        raise WebConfigError(f"tls_server_config: set {inline} or {file_key}, not both")
    if name:
        path = base / name
        if not path.is_file():
            raise WebConfigError(f"tls_server_config.{file_key}: {name} does not exist")
        watched.append(str(path))
        return str(path)
    if not text:
        return None
    handle, temp = tempfile.mkstemp(prefix="dli-exporter-", suffix=".pem")
    temporary.append(temp)
    with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp makes it readable by us only
        out.write(text)
    return temp


def _tls_context(tls: dict[str, Any], base: Path, watched: list[str]) -> tuple[ssl.SSLContext, frozenset[str]]:
    temporary: list[str] = []
    try:
        cert = _pem_or_file(tls, "cert", "cert_file", base, watched=watched, temporary=temporary)
        key = _pem_or_file(tls, "key", "key_file", base, watched=watched, temporary=temporary)
        if cert is None:
            raise WebConfigError("tls_server_config: cert_file (or cert) is required")
        if key is None:
            raise WebConfigError("tls_server_config: key_file (or key) is required")
        ca = _pem_or_file(tls, "client_ca", "client_ca_file", base, watched=watched, temporary=temporary)
        return _context(tls, cert, key, ca)
    finally:
        for path in temporary:  # loaded into the context: no key stays on disk
            os.unlink(path)


def _context(tls: dict[str, Any], cert: str, key: str, ca: str | None) -> tuple[ssl.SSLContext, frozenset[str]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError):
        raise WebConfigError("tls_server_config: the certificate and key cannot be loaded (not PEM, "
                             "or they do not belong together)") from None
    versions = []
    for name, default in (("min_version", DEFAULT_MIN_TLS), ("max_version", DEFAULT_MAX_TLS)):
        value = _string(tls.get(name), f"tls_server_config.{name}") or default
        if value not in _TLS_VERSIONS:
            raise WebConfigError(f"tls_server_config.{name}: {value!r} is not one of " + ", ".join(_TLS_VERSIONS))
        versions.append(_TLS_VERSIONS[value])
    if versions[0] > versions[1]:
        raise WebConfigError("tls_server_config: min_version is above max_version")
    context.minimum_version, context.maximum_version = versions
    auth_type = _string(tls.get("client_auth_type"), "tls_server_config.client_auth_type") or "NoClientCert"
    if auth_type in _UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(f"tls_server_config.client_auth_type {auth_type} accepts client certificates "
                             "without verifying them, which Python's ssl cannot do (nor should): use "
                             "RequireAndVerifyClientCert with client_ca_file")
    if auth_type not in _CLIENT_AUTH:
        raise WebConfigError(f"tls_server_config.client_auth_type: {auth_type!r} is not one of "
                             + ", ".join([*_CLIENT_AUTH, *sorted(_UNVERIFIED_CLIENT_AUTH)]))
    context.verify_mode = _CLIENT_AUTH[auth_type]
    if ca is not None and auth_type == "NoClientCert":
        raise WebConfigError("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert "
                             "(set RequireAndVerifyClientCert)")
    if auth_type != "NoClientCert":
        if ca is None:
            raise WebConfigError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file")
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError):
            raise WebConfigError("tls_server_config: the client CA cannot be loaded (not PEM)") from None
    sans = frozenset(_strings(tls.get("client_allowed_sans"), "tls_server_config.client_allowed_sans"))
    if sans and auth_type != "RequireAndVerifyClientCert":
        raise WebConfigError("tls_server_config.client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
    suites = _strings(tls.get("cipher_suites"), "tls_server_config.cipher_suites")
    if suites:
        unknown = [s for s in suites if s not in _CIPHERS]
        if unknown:
            raise WebConfigError(f"tls_server_config.cipher_suites: unknown cipher suite {unknown[0]!r}")
        context.set_ciphers(":".join(_CIPHERS[s] for s in suites))
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise WebConfigError("tls_server_config.prefer_server_cipher_suites must be true or false")
    if prefer:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    curves = _strings(tls.get("curve_preferences"), "tls_server_config.curve_preferences")
    unknown_curves = [c for c in curves if c not in _CURVES]
    if unknown_curves:
        raise WebConfigError(f"tls_server_config.curve_preferences: unknown curve {unknown_curves[0]!r}")
    if curves:
        log.warning("tls_server_config.curve_preferences is not applied: Python's ssl module uses OpenSSL's "
                    "default curves")
    return context, sans


def _stamp(paths: Iterable[str]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((path, st.st_mtime, st.st_size))
        except OSError:
            out.append((path, -1.0, -1))
    return tuple(out)


class WebConfigSource:
    """The current configuration, re-read when the file or a file it names changes. A change that
    does not load is logged once and the last good version stays in force, so a typo made while
    rotating a certificate never takes the exporter off the air. ``on_load`` hears of every load
    (True) and every failed reload (False), for the ``..._last_reload_successful`` gauge."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic,
                 on_load: Callable[[bool], None] = lambda ok: None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._config = load_web_config(path)
        self._stamp = _stamp(self._config.watched)
        self._clock = clock
        self._checked = clock()
        self._failed_stamp: tuple[tuple[str, float, int], ...] | None = None
        self._on_load = on_load
        on_load(True)

    def current(self) -> WebConfig:
        now = self._clock()
        if now - self._checked < 1.0:  # at most one stat() round per second
            return self._config
        with self._lock:
            self._checked = now
            stamp = _stamp(self._config.watched)
            if stamp not in (self._stamp, self._failed_stamp):
                try:
                    config = load_web_config(self.path)
                except WebConfigError as exc:
                    self._failed_stamp = stamp
                    self._on_load(False)
                    log.error("web config not reloaded, keeping the previous one", extra={"error": str(exc)})
                else:
                    self._config, self._stamp, self._failed_stamp = config, _stamp(config.watched), None
                    self._on_load(True)
                    log.info("web config reloaded", extra={"file": self.path})
            return self._config


def verify_client_sans(conn: ssl.SSLSocket, allowed: frozenset[str]) -> bool:
    """True when the client certificate names one of ``allowed`` (DNS, IP, e-mail or URI)."""
    cert = conn.getpeercert() or {}
    names = {str(entry[1]) for entry in cert.get("subjectAltName", ()) if len(entry) == 2}
    return bool(names & allowed)
