"""The HTTP server: a thread per connection, TLS (from the web configuration) on that thread.

A TLS handshake runs on the connection's own thread with a timeout, so a client that never
finishes it stalls no one. Handler sockets time out, so a client that connects and says nothing
does not hold a thread for ever. Errors of a connection are one log event, never a traceback.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .config import HANDSHAKE_TIMEOUT, WebConfigSource, verify_client_sans

log = logging.getLogger(__name__)


class Handler(WSGIRequestHandler):
    # A client that connects and then says nothing must not hold a thread for ever.
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        log.debug("http %s", format % args)


class ThreadingServer(ThreadingMixIn, WSGIServer):
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


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6


def make(host: str, port: int, app: Any, web: WebConfigSource | None) -> WSGIServer:
    """A bound server for ``app`` (not serving yet); TLS when the web configuration has it.
    Raises OSError when the address cannot be bound."""
    server_class = ThreadingServer6 if ":" in host else ThreadingServer
    server = make_server(host, port, app, server_class=server_class, handler_class=Handler)
    if web is not None and web.current().tls is not None:
        server.web = web
    return server
