"""The HTTP server: a thread per connection, TLS (from the web configuration) on that thread.

A TLS handshake runs on the connection's own thread with a timeout, so a client that never
finishes it stalls no one. A request's line and headers must arrive within HEADER_TIMEOUT of the
connection (see limits), so an idle or slow client holds its thread for that long at most; at
most MAX_CONNECTIONS are served at once. Garbage (not HTTP, a TLS hello on plain HTTP, oversized
headers) gets http.server's 4xx or a closed connection. Errors of a connection are one log
event, never a traceback.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from . import limits
from .config import HANDSHAKE_TIMEOUT, WebConfigSource, verify_client_sans

log = logging.getLogger(__name__)


class Handler(WSGIRequestHandler):
    # Each read and write of a connection; the headers have their own, shorter, overall deadline.
    timeout = 60
    # http.server's errors (bad request line, oversized headers, HTTP/2 and later) as one short
    # line that quotes nothing the client sent, under a status line even for a request that
    # never said its version (http.server would answer such with a bare HTML body).
    error_message_format = "%(code)d %(explain)s\n"
    error_content_type = "text/plain; charset=utf-8"
    default_request_version = "HTTP/1.0"
    server: ThreadingServer

    def setup(self) -> None:
        super().setup()
        self.server.deadlines.watch(self.connection)

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers
        self.server.deadlines.done(self.connection)  # the request line and headers are in
        return parsed

    def finish(self) -> None:
        self.server.deadlines.done(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        # A client's request line may hold anything: the log's formatter escapes it.
        log.debug("http", extra={"client": self.client_address[0], "event": format % args})


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    tls_source: WebConfigSource | None = None  # when TLS is on: the web config, whose certificates may be rotated
    _tls: ssl.SSLContext | None = None
    deadlines: limits.HeaderDeadlines
    max_connections = limits.MAX_CONNECTIONS
    # The listen backlog (socketserver's default is 5): a burst of connections waits to be
    # accepted instead of having its SYNs dropped, which clients retry only after a second or more.
    request_queue_size = 1024

    def __init__(self, *args: Any, header_timeout: float | None = None, **kwargs: Any) -> None:
        # Before the base class binds: a failed bind calls server_close, which closes these.
        self.deadlines = limits.HeaderDeadlines(limits.HEADER_TIMEOUT if header_timeout is None else header_timeout)
        self._connections = 0
        self._count_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self._connections >= self.max_connections
            if not full:
                self._connections += 1
        if full:
            log.warning("connection refused: too many open", extra={"client": str(client_address[0]),
                                                                    "max_connections": self.max_connections})
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._connections -= 1

    @property
    def connections(self) -> int:
        """Connections being served now (each on its own thread)."""
        with self._count_lock:
            return self._connections

    def server_close(self) -> None:
        super().server_close()
        self.deadlines.close()

    @property
    def scheme(self) -> str:
        return "https" if self.tls_source is not None else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls_source is None:
            super().finish_request(request, client_address)
            return
        config = self.tls_source.current()
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


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6


def make(host: str, port: int, app: Any, web: WebConfigSource | None,
         header_timeout: float | None = None) -> ThreadingServer:
    """A bound server for ``app`` (not serving yet); TLS when the web configuration has it.
    Raises OSError when the address cannot be bound."""
    server_class = ThreadingServer6 if ":" in host else ThreadingServer
    server = server_class((host, port), Handler, header_timeout=header_timeout)
    server.set_app(app)
    if web is not None and web.current().tls is not None:
        server.tls_source = web
    return server
