"""Wiring and signals: settings → DLI side → sweeper → collector → routes → HTTP server.

:func:`build_exporter` is the factory (bound, not serving); :func:`serve` runs it until SIGTERM or
SIGINT and returns the exit code.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIServer

from . import __version__
from .collector import DliCollector
from .dli.api import DliApi
from .domain import Target
from .listen import parse_listen_address
from .logs import one_line
from .probe import Probes
from .selfmetrics import ApiStats
from .settings import ConfigError, Settings
from .sweeper import MAX_WORKERS, Sweeper
from .views import Views
from .web import server as http_server
from .web.app import MetricsApp
from .web.config import WebConfigError, WebConfigSource
from .web.guard import Protected
from .web.limits import InFlightLimit

log = logging.getLogger("exporter")

EXIT_OK = 0
EXIT_CONFIG = 2


class Exporter:
    """The running exporter: HTTP server, sweeper and DLI side, built by :func:`build_exporter`."""

    def __init__(self, settings: Settings, *, api: DliApi, views: Views, sweeper: Sweeper,
                 server: WSGIServer) -> None:
        self.settings = settings
        self.api = api
        self.views = views
        self.sweeper = sweeper
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
        """Stop serving (from any thread but the serving one) and release the DLI side."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.sweeper.close()
        self.views.close()
        self.api.close()


class ListenError(Exception):
    """The listen address cannot be bound (in use, not permitted, no such address)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address}: {reason}")
        self.address = address
        self.reason = reason


def build_exporter(settings: Settings) -> Exporter:
    """The exporter for ``settings``, its server bound but not serving.

    Raises ConfigError when the web configuration file cannot be used, ListenError when the
    address cannot be bound."""
    stats = ApiStats()
    web = None
    if settings.web_config_file:
        try:
            web = WebConfigSource(settings.web_config_file, on_load=stats.web_config_loaded)
        except WebConfigError as exc:
            raise ConfigError("DLI_EXPORTER_WEB_CONFIG_FILE", f"{settings.web_config_file}: {exc}") from None
    api = DliApi(settings, stats)
    targets = settings.targets
    workers = MAX_WORKERS if not targets else min(MAX_WORKERS, len(targets))
    views = Views(api.read, detail=settings.show_detail, interval=settings.detail_interval_seconds, workers=workers)
    configured = {t.project_id for t in targets}

    def forget(target: Target) -> None:
        views.forget(target)
        api.forget(target)
        if target.project_id not in configured:
            stats.forget(target.project_id)

    sweeper = Sweeper(views.read, settings.cache_seconds, workers=workers, pinned=targets, on_evict=forget,
                      idle_evict=settings.probe_idle_seconds)
    collector = DliCollector(sweeper.scope(targets), stats, [t.project_id for t in targets],
                             per_job=settings.per_job_metrics, show_detail=settings.show_detail,
                             default_timeout=settings.scrape_timeout_seconds,
                             regions={t.project_id: t.region for t in targets})
    app: Any = MetricsApp(collector, settings.scrape_timeout_seconds, Probes(settings, sweeper, stats))
    if web is not None:
        app = Protected(app, web)
    # Outermost: even checking credentials counts against the limit.
    app = InFlightLimit(app, settings.web_max_requests)
    host, port = parse_listen_address(settings.listen_address)
    try:
        server = http_server.make(host, port, app, web)
    except OSError as exc:
        sweeper.close()
        views.close()
        api.close()
        raise ListenError(settings.listen_address, exc.strerror or str(exc)) from None
    return Exporter(settings, api=api, views=views, sweeper=sweeper, server=server)


def serve(settings: Settings, *, demo: bool = False) -> int:
    """Build the exporter and serve until SIGTERM or SIGINT. Returns the exit code."""
    try:
        exporter = build_exporter(settings)
    except ConfigError as exc:
        print(f"dli-exporter: invalid setting {exc.setting}: {one_line(exc.problem)}", file=sys.stderr)
        return EXIT_CONFIG
    except ListenError as exc:
        # Not an invalid setting: the address may be right and merely taken. Still the setting to look at.
        print(f"dli-exporter: {one_line(str(exc))} (DLI_EXPORTER_LISTEN_ADDRESS)", file=sys.stderr)
        return EXIT_CONFIG

    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            # shutdown() waits for serve_forever() to return, which runs on this (main) thread.
            threading.Thread(target=exporter.stop, name="shutdown", daemon=True).start()

    # Said once the exporter is built: a start-up that fails says one line, its error, and nothing else.
    if not settings.targets:
        log.warning("no project configured (DLI_EXPORTER_PROJECT_IDS): /metrics has the exporter's own "
                    "series only, and /probe?target= sweeps the projects it is asked for")
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("listening", extra={"address": settings.listen_address, "url": exporter.url + "/metrics",
                                     # As configured: a {region} template stays visible as such.
                                     "endpoint": settings.endpoint or settings.api_endpoint,
                                     "projects": ",".join(settings.effective_project_ids), "demo": demo,
                                     "web_config": settings.web_config_file or "",
                                     "version": __version__})
        exporter.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exporter.stop()
    return EXIT_OK
