"""The routes: ``/metrics``, ``/probe``, ``/healthz`` and a landing page, as a WSGI application.

``/metrics`` and ``/probe`` honour ``X-Prometheus-Scrape-Timeout-Seconds``: the route makes the
scrape's one :class:`~exporter.domain.Deadline`, a little before Prometheus gives up, and passes
it down, so the answer (with ``dli_up 0`` for unfinished projects) arrives in time instead of
not at all. A header that is not a positive finite number is ignored (the configured timeout
applies), and none is taken past :data:`~exporter.domain.MAX_SCRAPE_TIMEOUT`: no scrape goes
without a deadline. Content negotiation is prometheus-client's; the rendering is
:mod:`exporter.render`'s.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.exposition import gzip_accepted

from .. import __version__
from ..collector import DliCollector
from ..discovery import Discovery
from ..domain import MAX_SCRAPE_TIMEOUT, Clock, Deadline, Target
from ..probe import ProbeRefused, Probes
from ..render import ValueFormatter, negotiate, render_chunks
from .replies import HEALTH_PATH, StartResponse, plain, reply

log = logging.getLogger(__name__)

GZIP_WBITS = 31  # zlib's window bits for a gzip wrapper

DISCOVERY_PATH = "/discovery"
# Time kept back from Prometheus' scrape timeout for rendering and the network.
DEADLINE_MARGIN = 0.5


def scrape_timeout(header: str | None, default: float) -> float:
    """The scrape's timeout: Prometheus' header when it is a positive finite number (at most
    MAX_SCRAPE_TIMEOUT), else the default."""
    if header:
        try:
            value = float(header)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return min(value, MAX_SCRAPE_TIMEOUT)
    return default


def scrape_deadline(header: str | None, default: float, clock: Clock = time.monotonic) -> Deadline:
    """The one deadline of a scrape: its timeout less a margin for rendering and the network."""
    timeout = scrape_timeout(header, default)
    return Deadline(clock() + timeout - min(DEADLINE_MARGIN, timeout * 0.2), timeout, clock)


def _landing_page() -> bytes:
    version = html.escape(__version__)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>DLI exporter</title></head><body>"
        f"<h1>DLI exporter</h1><p>Prometheus exporter for Huawei Cloud DLI Flink jobs, version {version}.</p>"
        "<ul><li><a href=\"metrics\">Metrics</a></li><li><a href=\"healthz\">Health</a></li>"
        "<li>One project: <code>probe?target=&lt;project id&gt;&amp;region=&lt;region&gt;</code></li>"
        "<li><a href=\"discovery\">Projects read</a> (Prometheus HTTP service discovery)</li></ul>"
        "</body></html>\n"
    ).encode()


class MetricsApp:
    """The WSGI application: ``/metrics`` for the projects ``projects`` gives, ``/probe`` for the
    one a query names, ``/discovery`` for Prometheus' HTTP service discovery of them."""

    def __init__(self, collector: DliCollector, projects: Discovery, default_timeout: float,
                 probes: Probes | None = None, clock: Clock = time.monotonic) -> None:
        self._collector = collector
        self._projects = projects
        self._probes = probes
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
            return plain(start_response, "500 Internal Server Error", "internal error")

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return plain(start_response, "405 Method Not Allowed", extra=[("Allow", "GET, HEAD")])
        if path == "/metrics":
            return self._metrics(environ, start_response, None, exporter_wide=True)
        if path == "/probe" and self._probes is not None:
            try:
                target = self._probes.target(environ.get("QUERY_STRING", ""))
            except ProbeRefused as refused:
                status = "403 Forbidden" if refused.status == 403 else "400 Bad Request"
                return plain(start_response, status, refused.reason)
            return self._metrics(environ, start_response, (self._projects.known(target),), exporter_wide=False)
        if path == DISCOVERY_PATH:
            return self._discovery(environ, start_response)
        if path == HEALTH_PATH:
            # Liveness only: it must not cost an API call, or probes would spend the API's quota.
            return plain(start_response, "200 OK", "ok")
        if path == "/":
            return reply(start_response, "200 OK", self._landing, "text/html; charset=utf-8")
        return plain(start_response, "404 Not Found")

    def _discovery(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The projects read, for Prometheus' ``http_sd_configs``: a JSON list of target groups
        (an empty list when discovery is off and nothing is configured)."""
        deadline = scrape_deadline(None, self._default_timeout, self._clock)
        body = json.dumps(self._projects.http_sd(deadline), separators=(",", ":")).encode()
        return reply(start_response, "200 OK", body, "application/json")

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse, targets: Sequence[Target] | None, *,
                 exporter_wide: bool) -> Iterable[bytes]:
        deadline = scrape_deadline(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"), self._default_timeout,
                                   self._clock)
        if targets is None:  # /metrics: the configured projects, and those found
            targets = self._projects.targets(deadline)
        negotiated = negotiate(environ.get("HTTP_ACCEPT", ""))
        self._formatter.start_render()
        families = self._collector.families(targets, deadline, self._formatter, negotiated.escaping,
                                            exporter_wide=exporter_wide)
        chunks = render_chunks(families, negotiated, self._formatter)
        del families  # the chunks consume it: each family is freed once written
        headers = []
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            # Compressed family by family, never holding the whole text. Level 1: a third of
            # level 6's CPU; exposition text is repetitive enough to shrink ~15x anyway.
            packer = zlib.compressobj(1, zlib.DEFLATED, GZIP_WBITS)
            output = b"".join([*map(packer.compress, chunks), packer.flush()])
            headers.append(("Content-Encoding", "gzip"))
        else:
            output = b"".join(chunks)
        return reply(start_response, "200 OK", output, negotiated.content_type, extra=headers)
