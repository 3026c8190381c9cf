"""Wiring and signals: settings → DLI side → resources → sweeper → projects → collector → routes → server.

:func:`build_exporter` is the factory (bound, not serving); :func:`serve` runs it until SIGTERM or
SIGINT and returns the exit code. This is the one place that turns settings into the parts that
run: the DLI side (:func:`build_api`, which ``--check`` uses too) and every registered resource
the settings switch on.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from . import __version__
from .collector import DliCollector, Exposed
from .discovery import Discovery
from .dli import schema
from .dli.api import DliApi
from .dli.transport import Counter
from .domain import Deadline, Result, Target
from .environment import config_failure
from .families import credential_family
from .listen import parse_listen_address
from .logs import one_line
from .probe import Probes
from .regions import NoEndpoint, dli_endpoint
from .resources import REGISTERED, Source, jobs
from .selfmetrics import ApiStats
from .settings import EXIT_CONFIG, ConfigError, Settings
from .sweeper import Sweeper, Swept
from .web import server as http_server
from .web.app import MetricsApp
from .web.config import WebConfigError, WebConfigSource
from .web.guard import WebGuard
from .web.limits import InFlightLimit

log = logging.getLogger("exporter")

EXIT_OK = 0


class Exporter:
    """The running exporter: HTTP server, sweeper, resources and DLI side, built by :func:`build_exporter`."""

    def __init__(self, settings: Settings, *, api: DliApi, sources: list[Source], sweeper: Sweeper,
                 server: http_server.ThreadingServer, discovery: Discovery) -> None:
        self.settings = settings
        self.api = api
        self.discovery = discovery
        self.sources = sources
        self.sweeper = sweeper
        self.server = server
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        if host in ("0.0.0.0", "::"):  # noqa: S104  (not binding: naming a reachable address)
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.server.scheme}://{host}:{self.port}"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving (from any thread but the serving one) and release everything else."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.discovery.close()
        _close(self.api, self.sources, self.sweeper)


def _close(api: DliApi, sources: list[Source], sweeper: Sweeper) -> None:
    sweeper.close()
    for source in sources:
        source.close()
    api.close()


class ListenError(Exception):
    """The listen address cannot be bound (in use, not permitted, no such address)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address}: {reason}")
        self.address = address
        self.reason = reason


def build_api(settings: Settings, counter: Counter) -> DliApi:
    """The DLI side, from the settings' plain values."""
    return DliApi(method=settings.auth_method, options=settings.auth_options, counter=counter,
                  timeout=settings.request_timeout_seconds, retries=settings.retries,
                  concurrency=settings.concurrency, max_bytes=settings.max_response_bytes,
                  iam_endpoint=settings.discovery_iam_endpoint if settings.discovers else "")


def build_discovery(settings: Settings, api: DliApi,
                    on_change: Callable[[tuple[Target, ...]], None] | None = None) -> Discovery:
    """The projects to read: the configured ones, and those the account's look-up finds."""
    return Discovery(settings.targets, enabled=api.iam is not None,
                     lookup=api.iam.projects if api.iam is not None else None,
                     check=partial(_check_readable, api), place=settings.target, served=schema.REGIONS,
                     regions=settings.regions, interval=settings.discovery_interval_seconds, on_change=on_change)


def _check_readable(api: DliApi, target: Target, deadline: Deadline) -> Result:
    return api.read(target, jobs.READABLE, deadline)


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
    api = build_api(settings, stats)
    targets = settings.targets
    options = settings.resource_options()
    resources = [r for r in REGISTERED if settings.reads(r)]
    sources = {r.name: r.source(api.read, options) for r in resources}
    configured = {t.project_id for t in targets}

    def forget(target: Target) -> None:
        for source in sources.values():
            source.forget(target)
        api.forget(target)
        if target.project_id not in configured:
            stats.forget(target.project_id)

    swept = [Swept(r.name, sources[r.name].read, partial(r.reuse_for, options)) for r in resources]
    sweeper = Sweeper(swept, workers=options.workers, pinned=targets, on_evict=forget,
                      idle_evict=settings.probe_idle_seconds)
    discovery = build_discovery(settings, api, on_change=sweeper.pin)
    collector = DliCollector(sweeper, stats, [Exposed(r, r.table.exposed(r.groups(options))) for r in resources],
                             exporter_wide=lambda: [*discovery.families(),
                                                    credential_family(api.auth.label, api.holdback.rejected)])
    app: Any = MetricsApp(collector, discovery, settings.scrape_timeout_seconds, Probes(settings))
    if web is not None:
        app = WebGuard(app, web)
    # Outermost: even checking credentials counts against the limit.
    app = InFlightLimit(app, settings.web_max_requests)
    host, port = parse_listen_address(settings.listen_address)
    try:
        server = http_server.make(host, port, app, web)
    except OSError as exc:
        _close(api, list(sources.values()), sweeper)
        discovery.close()
        raise ListenError(settings.listen_address, exc.strerror or str(exc)) from None
    return Exporter(settings, api=api, sources=list(sources.values()), sweeper=sweeper, server=server,
                    discovery=discovery)


def serve(settings: Settings, *, demo: bool = False) -> int:
    """Build the exporter and serve until SIGTERM or SIGINT. Returns the exit code."""
    try:
        exporter = build_exporter(settings)
    except ConfigError as exc:
        return config_failure("dli-exporter", exc, sys.stderr)
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
    if not settings.targets and not settings.discovers:
        log.warning("no project configured (DLI_EXPORTER_PROJECT_IDS) and discovery off: /metrics has the "
                    "exporter's own series only, and /probe?target= sweeps the projects it is asked for")
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("listening", extra={"address": settings.listen_address, "url": exporter.url + "/metrics",
                                     # As configured: a {region} template stays visible as such.
                                     "endpoint": settings.endpoint or _default_endpoint(settings),
                                     "projects": ",".join(settings.effective_project_ids), "demo": demo,
                                     "discovery": settings.discovery_iam_endpoint if settings.discovers else "off",
                                     "resources": ",".join(s.name for s in REGISTERED if settings.reads(s)),
                                     "web_config": settings.web_config_file or "", "version": __version__})
        exporter.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exporter.stop()
    return EXIT_OK


def _default_endpoint(settings: Settings) -> str:
    """The endpoint of the default region, for the start-up log ("" when there is none)."""
    try:
        return dli_endpoint(settings.effective_region or "", settings.endpoint)
    except NoEndpoint:
        return ""
