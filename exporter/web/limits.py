"""Bounds on what clients can hold: a deadline for a request's headers, a cap on connections, and
a cap on requests in flight (``--web.max-requests``, as node_exporter's).

The server runs a thread per connection. Without a deadline, a client that connects and says
nothing (or sends its headers a byte at a time) holds that thread; with one, it holds it for
``HEADER_TIMEOUT`` at most, whatever it sends. One watcher thread enforces every deadline by
shutting the socket down, which ends the blocked read on the connection's own thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .replies import UNGUARDED, StartResponse, WsgiApp, plain

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds from accepting a connection to having its request line and headers
MAX_CONNECTIONS = 1024  # connections served at once; more are closed at once (each holds a thread)


class HeaderDeadlines:
    """Closes connections whose request has not arrived within ``timeout`` of being accepted."""

    def __init__(self, timeout: float = HEADER_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._watched: dict[socket.socket, float] = {}
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket) -> None:
        with self._cond:
            if self._closed:
                return
            self._watched[sock] = self._clock() + self._timeout
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="header-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def done(self, sock: socket.socket) -> None:
        """The request has arrived (or the connection ended): no deadline any more."""
        with self._cond:
            self._watched.pop(sock, None)

    def __len__(self) -> int:
        with self._cond:
            return len(self._watched)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = self._clock()
                expired = [sock for sock, due in self._watched.items() if due <= now]
                for sock in expired:
                    del self._watched[sock]
                    with contextlib.suppress(OSError):  # already gone
                        # The socket's own shutdown, not TLS's: it only has to wake the reader.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                if expired:
                    log.debug("closed connections that sent no request in time", extra={"count": len(expired)})
                upcoming = min(self._watched.values(), default=None)
                self._cond.wait(None if upcoming is None else max(0.0, upcoming - now))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._watched.clear()
            self._cond.notify()


class InFlightLimit:
    """WSGI middleware: at most ``limit`` requests in flight (0: no limit); 503 beyond."""

    def __init__(self, app: WsgiApp, limit: int) -> None:
        self._app = app
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self._busy = f"too many requests in flight (--web.max-requests={limit}); try again later"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self._slots is None or environ.get("PATH_INFO") in UNGUARDED:
            return self._app(environ, start_response)
        if not self._slots.acquire(blocking=False):
            return plain(start_response, "503 Service Unavailable", self._busy, extra=[("Retry-After", "1")])
        try:
            # Our routes answer with a finished list of bytes: the request is over when this returns.
            return list(self._app(environ, start_response))
        finally:
            self._slots.release()
