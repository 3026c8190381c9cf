"""The ``dli-exporter`` command, the one entry point: flags, settings, logging, the demo's
simulated API, and which of serving (:mod:`.wiring`), ``--check`` (:mod:`.preflight`) and
``healthcheck`` (:mod:`.healthcheck`) to run.

The simulator is imported only for ``--demo``: it is not part of what runs against the cloud.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, logs
from .environment import config_failure, load_settings, unknown_env_names
from .healthcheck import healthcheck
from .preflight import run_check
from .resources.jobs import JOB_TYPES
from .settings import ConfigError
from .wiring import serve

log = logging.getLogger("exporter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dli-exporter",
        description="Prometheus exporter for Flink jobs on Huawei Cloud Data Lake Insight (DLI). "
        "Settings come from the environment (see the README); these flags override them. "
        "`dli-exporter healthcheck` exits 0 when the running exporter answers (see its --help).",
    )
    parser.add_argument("--demo", action="store_true",
                        help="serve a built-in simulated DLI API on loopback; no credentials needed")
    parser.add_argument("--check", action="store_true",
                        help="read each configured project once in both views, print a short table, "
                        "and exit 0 (all read) or 1: checks credentials and permissions")
    parser.add_argument("--listen-address", dest="listen_address", metavar="HOST:PORT",
                        help="where to serve /metrics (DLI_EXPORTER_LISTEN_ADDRESS)")
    parser.add_argument("--region", help="DLI region, e.g. cn-north-4 (DLI_EXPORTER_REGION)")
    parser.add_argument("--endpoint", help="DLI endpoint URL (DLI_EXPORTER_ENDPOINT)")
    parser.add_argument("--project-ids", dest="project_ids", metavar="IDS",
                        help="comma-separated project ids (DLI_EXPORTER_PROJECT_IDS)")
    parser.add_argument("--show-detail", dest="show_detail", action=argparse.BooleanOptionalAction, default=None,
                        help="also read the detail view: run modes and job_config metrics; on by default "
                        "(DLI_EXPORTER_SHOW_DETAIL)")
    parser.add_argument("--cache-seconds", dest="cache_seconds", metavar="SECONDS",
                        help="reuse a sweep for this long (DLI_EXPORTER_CACHE_SECONDS)")
    parser.add_argument("--web.config.file", "--web-config-file", dest="web_config_file", metavar="FILE",
                        help="TLS and basic auth for /metrics, in the Prometheus exporter toolkit's format "
                        "(DLI_EXPORTER_WEB_CONFIG_FILE)")
    parser.add_argument("--web.max-requests", "--web-max-requests", dest="web_max_requests", metavar="N",
                        help="requests served at once; more get 503 (0: no limit; default 40) "
                        "(DLI_EXPORTER_WEB_MAX_REQUESTS)")
    parser.add_argument("--log-level", dest="log_level", help="debug, info, warning or error (DLI_EXPORTER_LOG_LEVEL)")
    parser.add_argument("--log-format", dest="log_format", help="logfmt or json (DLI_EXPORTER_LOG_FORMAT)")
    parser.add_argument("--version", action="version", version=f"dli-exporter {__version__}")
    return parser


def _healthcheck_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dli-exporter healthcheck",
        description="Exit 0 when the exporter running with these settings answers on /healthz, else 1 "
        "(2 for a bad setting). Reads the same environment as the server; needs no credentials.")
    parser.add_argument("--listen-address", dest="listen_address", metavar="HOST:PORT",
                        help="where the server listens (DLI_EXPORTER_LISTEN_ADDRESS)")
    parser.add_argument("--web.config.file", "--web-config-file", dest="web_config_file", metavar="FILE",
                        help="the server's web configuration, for TLS (DLI_EXPORTER_WEB_CONFIG_FILE)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter until SIGTERM or SIGINT (or a subcommand). Returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["healthcheck"]:
        try:
            checked = _healthcheck_parser().parse_args(argv[1:])
        except SystemExit as exc:
            return int(exc.code or 0)
        return healthcheck(vars(checked), sys.stderr)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse exits 2)
        return int(exc.code or 0)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items()
                                 if k not in ("demo", "check") and v is not None}

    simulator = None
    if args.demo:
        from . import simulator as sim_module  # noqa: PLC0415  (only the demo needs it, never a real run)

        # No project configured: the demo finds its account's projects as a real run would, from
        # the key alone (projects in two regions and a sub-project; one simulator plays IAM and
        # each region's endpoint).
        projects = sim_module.demo_projects()
        simulator = sim_module.Simulator(projects, evolve=True, regions=sim_module.DEMO_REGIONS,
                                         queues=sim_module.demo_queues(projects), account=sim_module.demo_account(),
                                         denied={sim_module.DEMO_DENIED}).start()
        overrides = {
            "ak": sim_module.DEMO_AK, "sk": sim_module.DEMO_SK, "endpoint": simulator.url + "/{region}",
            "iam_endpoint": simulator.url, "discovery": "auto", "show_detail": True, "cache_seconds": 0,
            # Settings of the real cloud in the environment must not leak into the demo: an empty
            # value overrides the variable and reads as unset.
            "project_ids": "", "sdk_project_id": "", "regions": "", "iam_username": "", "security_token": "",
            **overrides,
        }
    try:
        try:
            settings = load_settings(overrides)
        except ConfigError as exc:
            return config_failure("dli-exporter", exc, sys.stderr)
        logs.setup(settings.log_level, settings.log_format)
        for name in unknown_env_names():
            log.warning("unknown setting ignored", extra={"variable": name})
        if settings.unknown_job_type:
            log.warning("DLI_EXPORTER_JOB_TYPE is none of the job types DLI documents; passed on as it is",
                        extra={"job_type": settings.job_type, "known": ",".join(JOB_TYPES)})
        if args.check:
            try:
                return run_check(settings, sys.stdout)
            except BrokenPipeError:  # the table's reader went away (``| head``): no traceback at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1
        return serve(settings, demo=simulator is not None)
    finally:
        if simulator is not None:
            simulator.stop()


if __name__ == "__main__":
    raise SystemExit(main())
