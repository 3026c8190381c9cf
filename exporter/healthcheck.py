"""``dli-exporter healthcheck``: exit 0 when the running exporter's ``/healthz`` answers.

For container HEALTHCHECKs and exec probes. It reads the same settings as the server (from the
environment, or the same flags): the listen address, to know where to knock (an all-addresses
host becomes loopback), and the web configuration, to speak TLS when the server does. It needs
no credentials, so it works beside ``--demo`` as well. ``/healthz`` is open under basic auth, so
no password is needed either. The server's certificate is not verified: the question is whether
this process answers, not who it is. A server that requires client certificates cannot be
asked this way (the check has none): it says so and fails.
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any, TextIO

from .environment import config_failure, load
from .listen import parse_listen_address
from .logs import one_line
from .settings import ENV_PREFIX, ConfigError, ServerSettings
from .web.config import WebConfigError, load_web_config
from .web.replies import HEALTH_PATH

TIMEOUT = 4.0  # seconds; under Docker's and Kubernetes' usual 5 s probe timeout
EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1
PROGRAM = "dli-exporter healthcheck"


def _local(host: str) -> str:
    """Where to knock for a server listening on ``host``: loopback for all addresses."""
    if host in ("0.0.0.0", ""):  # noqa: S104  (not binding: naming the address the server listens on)
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def healthcheck(overrides: dict[str, Any], err: TextIO) -> int:
    try:
        settings = load(ServerSettings, overrides)
    except ConfigError as exc:
        return config_failure(PROGRAM, exc, err)
    tls = None
    if settings.web_config_file:
        try:
            tls = load_web_config(settings.web_config_file).tls
        except WebConfigError as exc:
            return config_failure(PROGRAM, ConfigError(f"{ENV_PREFIX}WEB_CONFIG_FILE", str(exc)), err)
    host, port = parse_listen_address(settings.listen_address)
    host = _local(host)
    scheme = "https" if tls is not None else "http"
    where = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}{HEALTH_PATH}"
    try:
        status = _get_healthz(host, port, tls is not None)
    except ssl.SSLError as exc:
        hint = " (the server requires a client certificate?)" if "CERTIFICATE_REQUIRED" in str(exc).upper() else ""
        problem = f"TLS failed: {exc.reason or exc}{hint}"
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a host http.client refuses
        problem = str(exc) or type(exc).__name__
    else:
        if status == 200:
            return EXIT_HEALTHY
        problem = f"HTTP {status}"
    print(f"{PROGRAM}: {one_line(where)}: {one_line(problem)}", file=err)
    return EXIT_UNHEALTHY


def _get_healthz(host: str, port: int, tls: bool) -> int:
    """The status of GET /healthz (the body is not needed)."""
    conn: http.client.HTTPConnection
    if tls:
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE  # liveness, not identity: see the module's docstring
        conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=client)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", HEALTH_PATH, headers={"User-Agent": "dli-exporter-healthcheck"})
        return conn.getresponse().status
    finally:
        conn.close()
