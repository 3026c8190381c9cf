"""The tests' one helper module: API-shaped jobs, settings for a simulator, an exporter running in
a thread or as a process, scraping it, and reading an exposition (with prometheus-client's own
parser), so that no test file keeps a copy of any of it."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import requests.auth
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics_text
from prometheus_client.parser import text_string_to_metric_families as parse_text
from pydantic import SecretStr

from exporter import logs
from exporter.dli import schema
from exporter.dli.api import DliApi
from exporter.dli.auth import AccessKey
from exporter.dli.errors import Failure
from exporter.dli.transport import Call
from exporter.domain import Deadline, FieldError, Page
from exporter.environment import load_settings
from exporter.resources.jobs.record import Job, parse_job, parse_page
from exporter.settings import Settings
from exporter.simulator import DEMO_AK, DEMO_SK, Simulator
from exporter.wiring import Exporter, build_exporter

COMMAND = str(Path(sys.executable).parent / "dli-exporter")  # the console script, as users run it


# Where an exporter in a test looks the account's projects up unless told: a loopback port nothing
# listens on. A test never reaches a real cloud host, whatever it forgets to set.
NOWHERE = "http://127.0.0.1:9"


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any real credentials or settings, plus ``extra`` (and,
    unless ``extra`` says otherwise, an IAM endpoint on loopback that refuses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "DLI_EXPORTER_"))}
    env["DLI_EXPORTER_IAM_ENDPOINT"] = NOWHERE
    env.update(extra or {})
    return env


@contextmanager
def restored_logging() -> Iterator[None]:
    """Put back what logs.setup() changes: root handlers and level, urllib3's level, the thread hook."""
    root = logging.getLogger()
    urllib3 = logging.getLogger("urllib3")
    saved = (list(root.handlers), root.level, urllib3.level, threading.excepthook)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        urllib3.setLevel(saved[2])
        threading.excepthook = saved[3]


@contextmanager
def captured_logs(level: str = "debug", fmt: str = "logfmt") -> Iterator[io.StringIO]:
    """The exporter's log as it would reach stderr, through our own formatter."""
    stream = io.StringIO()
    with restored_logging():
        logs.setup(level, fmt, stream)
        yield stream


FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"  # make fuzz


def examples(count: int) -> int:
    """A property test's number of examples: as given for `make test`, ten times as many for `make fuzz`."""
    return count * 10 if FUZZING else count


SCRAPE_TIMEOUT = 3.0  # what Prometheus would announce in X-Prometheus-Scrape-Timeout-Seconds
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str, *, openmetrics: bool = False) -> Series:
    """An exposition's samples, by name and label set, read by prometheus-client's parser."""
    families = parse_openmetrics_text(text) if openmetrics else parse_text(text)
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


@dataclass
class Scrape:
    """One answer of the exporter, its samples parsed."""

    status: int
    seconds: float
    text: str
    series: Series
    headers: Mapping[str, str]

    def value(self, metric: str, /, **labels: str) -> float | None:
        return self.series.get((metric, frozenset(labels.items())))

    def up(self, project: str) -> float | None:
        return self.value("dli_up", project_id=project)

    def by(self, name: str, label: str = "project_id") -> dict[str, float]:
        """A family's values keyed by one label (``dli_up`` by project, say)."""
        return {dict(labels)[label]: v for (n, labels), v in self.series.items() if n == name}

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return sorted(((dict(labels), v) for (n, labels), v in self.series.items() if n == name),
                      key=lambda s: sorted(s[0].items()))

    def names_of(self, project: str) -> set[str]:
        """The sample names that carry ``project``."""
        return {n for n, labels in self.series if ("project_id", project) in labels}

    def projects_of(self) -> dict[str, set[str]]:
        """Each family's sample names' project ids ("" for none)."""
        out: dict[str, set[str]] = {}
        for name, labels in self.series:
            out.setdefault(name, set()).add(dict(labels).get("project_id", ""))
        return out

    def jobs_of(self, project: str) -> Series:
        """Every dli_jobs and dli_job_* sample of the project."""
        return {key: v for key, v in self.series.items()
                if (key[0] == "dli_jobs" or key[0].startswith("dli_job_")) and ("project_id", project) in key[1]}

    def total(self, metric: str, /, **labels: str) -> float:
        """A counter's value summed over the series that carry these labels (0 when none)."""
        want = set(labels.items())
        return sum(v for (n, lbls), v in self.series.items() if n == metric and want <= lbls)


def scrape(where: Exporter | str, path: str = "/metrics", *, timeout: float | None = SCRAPE_TIMEOUT,
           params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> Scrape:
    """GET ``path`` of an exporter (or a base URL) as Prometheus would, announcing ``timeout``
    (None: no header, the exporter's own default applies)."""
    url = (where if isinstance(where, str) else where.url) + path
    announced = {} if timeout is None else {"X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}"}
    started = time.monotonic()
    resp = requests.get(url, params=params, timeout=(timeout or 20) + 10, headers={**announced, **(headers or {})})
    seconds = time.monotonic() - started
    openmetrics = resp.headers.get("Content-Type", "").startswith("application/openmetrics-text")
    series = parse(resp.text, openmetrics=openmetrics) if resp.status_code == 200 else {}
    return Scrape(resp.status_code, seconds, resp.text, series, resp.headers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def job(job_id: int, **fields: Any) -> dict[str, Any]:
    """A job as the API gives it, with plausible defaults."""
    base: dict[str, Any] = {
        "job_id": job_id, "name": f"job-{job_id}", "desc": "", "user_name": "alice",
        "job_type": "flink_sql_job", "status": "job_running", "status_desc": "",
        "create_time": 1_700_000_000_000 + job_id * 1000, "start_time": 1_700_000_100_000 + job_id * 1000,
        "duration": 3_600_000, "root_id": -1, "graph_editor_enabled": False, "has_savepoint": False,
        "run_mode": "shared_cluster", "queue_name": "default", "restart_times": 0,
        "job_config": {"cu_number": 2, "parallel_number": 1, "checkpoint_enabled": True,
                       "restart_when_exception": False},
    }
    base.update(fields)
    return base


def jobs(count: int, start: int = 1, **fields: Any) -> list[dict[str, Any]]:
    return [job(i, **fields) for i in range(start, start + count)]


def settings_for(sim: Simulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ak": DEMO_AK, "sk": DEMO_SK, "endpoint": sim.url, "project_ids": ",".join(sim.projects),
        "listen_address": "127.0.0.1:0", "cache_seconds": 0, "request_timeout_seconds": 5,
        # The simulator plays IAM too; discovery only where a test asks for it.
        "iam_endpoint": sim.url, "discovery": "off",
    }
    values.update(overrides)
    return load_settings(values)


@contextmanager
def running_exporter(settings: Settings) -> Iterator[Exporter]:
    exporter = build_exporter(settings)
    thread = threading.Thread(target=exporter.serve_forever, daemon=True)
    thread.start()
    try:
        yield exporter
    finally:
        exporter.stop()
        thread.join(timeout=5)


def relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' `replace` relabelling (the only action our examples use), applied as Prometheus
    applies it: Go's RE2 anchors the regex, `$N` refers to a group. Rules in the operator's
    spelling (sourceLabels, targetLabel) work too."""
    labels = dict(labels)
    for rule in rules:
        sources = rule.get("source_labels", rule.get("sourceLabels", []))
        value = ";".join(labels.get(name, "") for name in sources)
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match:
            replacement = re.sub(r"\$(\d)", r"\\\1", rule.get("replacement", "$1"))
            labels[rule.get("target_label", rule.get("targetLabel", ""))] = match.expand(replacement)
    return labels


def wait_healthy(port: int, seconds: float = 15.0) -> None:
    """Wait until an exporter started as a process answers on 127.0.0.1:``port`` (plain HTTP)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on port {port} within {seconds:g} s")


def fetch_first_page(api: DliApi, base_url: str, project_id: str = "p1", seconds: float = 20.0) -> Page | Failure:
    """One call of the job list's first page through the transport alone (retries, but no
    hold-back and no paging): what the transport's own tests look at."""
    call = Call.get(schema.url(base_url, schema.project_path(project_id, "streaming/jobs"), schema.paging(0)),
                    project_id, {schema.PROJECT_HEADER: project_id})
    return api.transport.fetch(call, api.auth.authorizer(project_id), Deadline.after(seconds), parse_page)


class SignedBy(requests.auth.AuthBase):
    """A requests auth that signs as our AK/SK method does: for calls made by hand in tests."""

    def __init__(self, ak: str, sk: str, security_token: str | None = None, wall: Callable[[], float] = time.time):
        self._key = AccessKey(ak=ak, sk=SecretStr(sk), security_token=SecretStr(security_token) if security_token
                              else None, wall=wall)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        call = Call(request.method or "GET", request.url or "", dict(request.headers), "", body)
        request.headers.update(self._key.authorize(call, Deadline.after(60)).headers)
        return request


@contextmanager
def answering(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Iterator[str]:
    """A server on loopback that answers every GET with ``status`` and ``body`` (JSON) and no
    X-Request-Id unless given: a gateway as the simulator would never be. Yields its base URL."""
    encoded = json.dumps(body).encode()

    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def parsed(raw: Any, errors: list[FieldError] | None = None) -> Job:
    """A job as the exporter reads it from ``raw``; the fields it leaves out go to ``errors``."""
    return parse_job(raw, [] if errors is None else errors)
