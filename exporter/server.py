"""The HTTP side: ``/metrics``, ``/healthz``, a landing page, and the factory that wires it all.

``/metrics`` honours ``X-Prometheus-Scrape-Timeout-Seconds``: the sweep behind the scrape must end
a little before Prometheus gives up, so the answer (with ``dli_up 0`` for unfinished projects)
arrives in time instead of not at all. Content negotiation (OpenMetrics) and gzip are
prometheus-client's own.
"""

from __future__ import annotations

import gzip
import html
import logging
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from . import __version__
from .client import ApiStats, DliClient
from .collector import SCRAPE_DEADLINE, DliCollector
from .exposition import ValueFormatter, fast_renderer
from .settings import ConfigError, Settings, parse_listen_address
from .sweeper import Sweeper
from .webconfig import HANDSHAKE_TIMEOUT, Protected, WebConfigError, WebConfigSource, verify_client_sans

log = logging.getLogger(__name__)

# Time kept back from Prometheus' scrape timeout for rendering and the network.
DEADLINE_MARGIN = 0.5

StartResponse = Callable[..., Any]


def scrape_timeout(header: str | None, default: float) -> float:
    """The scrape's timeout: Prometheus' header when it is a positive number, else the default."""
    timeout = default
    if header:
        try:
            value = float(header)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            timeout = value
    return timeout


def scrape_budget(timeout: float) -> float:
    """Seconds a scrape may spend on sweeping: its timeout less a margin for rendering."""
    return timeout - min(DEADLINE_MARGIN, timeout * 0.2)


def _landing_page() -> bytes:
    version = html.escape(__version__)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>DLI exporter</title></head><body>"
        f"<h1>DLI exporter</h1><p>Prometheus exporter for Huawei Cloud DLI Flink jobs, version {version}.</p>"
        "<ul><li><a href=\"metrics\">Metrics</a></li><li><a href=\"healthz\">Health</a></li></ul>"
        "</body></html>\n"
    ).encode()


class MetricsApp:
    """The WSGI application."""

    def __init__(self, registry: CollectorRegistry, collector: DliCollector, default_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._collector = collector
        self._formatter = ValueFormatter()
        self._default_timeout = default_timeout
        self._clock = clock
        self._landing = _landing_page()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._route(environ, start_response)
        except Exception as exc:  # noqa: BLE001  (a bug answers 500 and logs one line, no traceback on stderr)
            log.error("request failed", extra={"path": environ.get("PATH_INFO", ""),
                                               "error": f"{type(exc).__name__}: {exc}"})
            return self._reply(start_response, "500 Internal Server Error", b"internal error\n")

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return self._reply(start_response, "405 Method Not Allowed", b"method not allowed\n",
                               extra=[("Allow", "GET, HEAD")])
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/healthz":
            # Liveness only: it must not cost an API call, or probes would spend the API's quota.
            return self._reply(start_response, "200 OK", b"ok\n")
        if path == "/":
            return self._reply(start_response, "200 OK", self._landing, "text/html; charset=utf-8")
        return self._reply(start_response, "404 Not Found", b"not found\n")

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        timeout = scrape_timeout(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"), self._default_timeout)
        token = SCRAPE_DEADLINE.set((self._clock() + scrape_budget(timeout), timeout))
        try:
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            render = fast_renderer(content_type)
            # The registry holds only our collector, so both paths give the same bytes; ours is
            # several times cheaper for the formats Prometheus asks for.
            if render is None:
                output = encoder(self._registry)
            else:
                self._formatter.start_render()
                output = render(self._collector.fast_families(self._formatter), self._formatter)
        finally:
            SCRAPE_DEADLINE.reset(token)
        headers = []
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            # Level 1: a third of level 6's CPU; exposition text is repetitive enough to shrink ~20x anyway.
            output = gzip.compress(output, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        return self._reply(start_response, "200 OK", output, content_type, extra=headers)

    @staticmethod
    def _reply(start_response: StartResponse, status: str, body: bytes,
               content_type: str = "text/plain; charset=utf-8",
               extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
        start_response(status, headers)
        return [body]


class _Handler(WSGIRequestHandler):
    # A client that connects and then says nothing must not hold a thread for ever.
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        log.debug("http %s", format % args)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    web: WebConfigSource | None = None  # set when TLS is on: its certificates may be rotated
    _tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.web is None:
            super().finish_request(request, client_address)
            return
        config = self.web.current()
        # TLS stays on for the life of the process; a reload only brings new certificates.
        self._tls = config.tls or self._tls
        if self._tls is None:
            return
        # The handshake runs here, on the connection's own thread, with a timeout: a client that
        # never finishes it cannot stall the accept loop or anyone else.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self._tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed", extra={"client": str(client_address[0]), "error": str(exc)})
            return
        try:
            if config.allowed_sans and not verify_client_sans(conn, config.allowed_sans):
                log.info("client certificate refused: no allowed SAN", extra={"client": str(client_address[0])})
                return
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]  # typeshed: Self
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback on stderr. A client hanging up early is routine.
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, ConnectionError | TimeoutError) else logging.WARNING
        log.log(level, "connection failed", extra={"client": str(client_address[0]),
                                                   "error": f"{type(exc).__name__}: {exc}"})


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class Exporter:
    """The running exporter: HTTP server, sweeper and client, built by :func:`build_exporter`."""

    def __init__(self, settings: Settings, client: DliClient, sweeper: Sweeper,
                 registry: CollectorRegistry, server: WSGIServer) -> None:
        self.settings = settings
        self.client = client
        self.sweeper = sweeper
        self.registry = registry
        self.server = server
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if getattr(self.server, "web", None) is not None else "http"

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        if host in ("0.0.0.0", "::"):  # noqa: S104  (not binding: naming a reachable address)
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving (from any thread but the serving one) and release the client."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def build_exporter(settings: Settings) -> Exporter:
    """Wire settings → client → sweeper → collector → registry → HTTP server (bound, not serving).

    Raises ConfigError when the web configuration file cannot be used, OSError when the address
    cannot be bound."""
    web = None
    if settings.web_config_file:
        try:
            web = WebConfigSource(settings.web_config_file)
        except WebConfigError as exc:
            raise ConfigError("DLI_EXPORTER_WEB_CONFIG_FILE", f"{settings.web_config_file}: {exc}") from None
    stats = ApiStats()
    client = DliClient(settings, stats)
    project_ids = settings.effective_project_ids
    sweeper = Sweeper(client, project_ids, settings.cache_seconds)
    registry = CollectorRegistry(auto_describe=False)
    collector = DliCollector(sweeper, stats, project_ids, per_job=settings.per_job_metrics,
                             show_detail=settings.show_detail, default_timeout=settings.scrape_timeout_seconds)
    registry.register(collector)
    app: Any = MetricsApp(registry, collector, settings.scrape_timeout_seconds)
    if web is not None:
        app = Protected(app, web)
    host, port = parse_listen_address(settings.listen_address)
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        server = make_server(host, port, app, server_class=server_class, handler_class=_Handler)
    except OSError:
        client.close()
        raise
    if web is not None and web.current().tls is not None:
        server.web = web
    return Exporter(settings, client, sweeper, registry, server)
