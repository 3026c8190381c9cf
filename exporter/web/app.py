"""The routes: ``/metrics``, ``/healthz`` and a landing page, as a WSGI application.

``/metrics`` honours ``X-Prometheus-Scrape-Timeout-Seconds``: it builds the scrape's request with
a deadline a little before Prometheus gives up and passes it down, so the answer (with
``dli_up 0`` for unfinished projects) arrives in time instead of not at all. Content negotiation
is prometheus-client's; the rendering is :mod:`exporter.render`'s, with prometheus-client's own
encoder kept for a format we have no fast path for.
"""

from __future__ import annotations

import html
import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client.exposition import gzip_accepted

from .. import __version__
from ..domain import ScrapeRequest
from ..probe import ProbeRefused
from ..render import FamilyLike, Format, ValueFormatter, negotiate, render_chunks

log = logging.getLogger(__name__)

GZIP_WBITS = 31  # zlib's window bits for a gzip wrapper

# Time kept back from Prometheus' scrape timeout for rendering and the network.
DEADLINE_MARGIN = 0.5

StartResponse = Callable[..., Any]


class Families(Protocol):
    """What ``/metrics`` serves: one scrape's families (the collector)."""

    def fast_families(self, fmt: Format, scrape: ScrapeRequest | None = None,
                      escaping: str = "underscores") -> list[Any]: ...

    def families(self, scrape: ScrapeRequest | None = None) -> list[Any]: ...


class ProbeSource(Protocol):
    """What ``/probe`` serves: the families of the target a query names (ProbeRefused if none)."""

    def collector(self, query: str) -> Families: ...


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
        "<ul><li><a href=\"metrics\">Metrics</a></li><li><a href=\"healthz\">Health</a></li>"
        "<li>One project: <code>probe?target=&lt;project id&gt;&amp;region=&lt;region&gt;</code></li></ul>"
        "</body></html>\n"
    ).encode()


class _Prebuilt:
    """Families already built for this scrape, in the shape prometheus-client's encoders read."""

    def __init__(self, families: Iterable[Any]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Any]:
        return [family.to_metric() for family in self._families]


class MetricsApp:
    """The WSGI application."""

    def __init__(self, collector: Families, default_timeout: float, probes: ProbeSource | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._collector = collector
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
            return self._reply(start_response, "500 Internal Server Error", b"internal error\n")

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return self._reply(start_response, "405 Method Not Allowed", b"method not allowed\n",
                               extra=[("Allow", "GET, HEAD")])
        if path == "/metrics":
            return self._metrics(environ, start_response, self._collector)
        if path == "/probe" and self._probes is not None:
            try:
                collector = self._probes.collector(environ.get("QUERY_STRING", ""))
            except ProbeRefused as refused:
                status = "403 Forbidden" if refused.status == 403 else "400 Bad Request"
                return self._reply(start_response, status, f"{refused.reason}\n".encode())
            return self._metrics(environ, start_response, collector)
        if path == "/healthz":
            # Liveness only: it must not cost an API call, or probes would spend the API's quota.
            return self._reply(start_response, "200 OK", b"ok\n")
        if path == "/":
            return self._reply(start_response, "200 OK", self._landing, "text/html; charset=utf-8")
        return self._reply(start_response, "404 Not Found", b"not found\n")

    def scrape_request(self, environ: dict[str, Any]) -> ScrapeRequest:
        timeout = scrape_timeout(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"), self._default_timeout)
        return ScrapeRequest(self._clock() + scrape_budget(timeout), timeout)

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse,
                 collector: Families) -> Iterable[bytes]:
        scrape = self.scrape_request(environ)
        negotiated, encoder, content_type = negotiate(environ.get("HTTP_ACCEPT", ""))
        chunks: Iterable[bytes]
        if negotiated is None:  # a format prometheus-client knows and we do not: its own encoder
            chunks = [encoder(_Prebuilt(collector.families(scrape)))]
        else:
            self._formatter.start_render()
            families: list[FamilyLike] = collector.fast_families(self._formatter, scrape, negotiated.escaping)
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
        return self._reply(start_response, "200 OK", output, content_type, extra=headers)

    @staticmethod
    def _reply(start_response: StartResponse, status: str, body: bytes,
               content_type: str = "text/plain; charset=utf-8",
               extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
        start_response(status, headers)
        return [body]
