"""A simulated DLI API over real HTTP, for the demo, the tests and the benchmark.

It shares no code with the exporter's client, signer or parser, so it cannot share their
mistakes: signatures are verified by its own implementation of SDK-HMAC-SHA256, from the
algorithm's description. It serves the list-jobs API (paging, order, filters, ``show_detail``)
and IAM password login, evolves its jobs over time (statuses change, restarts go up) and has
fault knobs for tests: latency, error answers on given pages, 429 with Retry-After, truncated
JSON, hangs, dropped connections and expired tokens.

Run it alone with ``python -m exporter.simulator --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

LIST_PATH = re.compile(r"^/v1\.0/([^/]+)/streaming/jobs/?$")
TOKEN_PATH = "/v3/auth/tokens"  # noqa: S105  (a path, not a secret)
MAX_CLOCK_SKEW = 15 * 60

JOB_TYPES = ("flink_sql_job", "flink_opensource_sql_job", "flink_jar_job")
RUN_MODES = ("shared_cluster", "exclusive_cluster", "edge_node")
QUEUES = ("default", "etl_queue", "realtime_queue", "analytics_queue")
USERS = ("alice", "bob", "data_team")
STATUS_WEIGHTS = {
    "job_running": 30, "job_running_exception": 3, "job_submit_fail": 2, "job_arrearage_stopped": 1,
    "job_init": 3, "job_submitting": 2, "job_cancel_success": 4, "job_finish": 3, "job_idle": 1,
    "job_savepointing": 1, "job_canceling": 1,
}
NAME_PARTS = ("orders", "clicks", "payments", "sessions", "inventory", "fraud", "ads", "iot", "logs", "users")
NAME_VERBS = ("enrich", "aggregate", "dedupe", "join", "sink", "window", "detect", "etl")

DEMO_AK = "DEMOACCESSKEY0000000"
DEMO_SK = "demo-secret-key-not-for-production"
DEMO_PROJECTS = ("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "f0e1d2c3b4a5968778695a4b3c2d1e0f")


@dataclass
class Fault:
    """One injected fault. It applies to requests matching ``project_id`` and ``page`` (None: any);
    ``times`` is how many matching requests it hits (None: all of them).

    kinds: ``error`` (``status`` with a DLI/APIG error body), ``rate_limit`` (429 with
    ``Retry-After: retry_after``), ``truncate`` (a 200 whose JSON is cut short), ``hang`` (wait
    ``seconds`` before answering), ``latency`` (extra ``seconds``), ``drop`` (close the connection
    without an answer), ``sloppy_types`` (numbers and booleans as strings, some nulls: all
    still meaning the same), ``wrong_types`` (a value that cannot be read as its field's type),
    ``not_success`` (a 200 with ``is_success`` false), ``bad_shape`` (a 200 without a job list),
    ``bad_signature`` (the verifier holds another secret key for the caller's access key, as after
    a key rotation the exporter missed: a real 401 from the signature check), ``body`` (a 200
    whose body is ``body``, whatever it holds).
    """

    kind: str
    project_id: str | None = None
    page: int | None = None
    times: int | None = None
    status: int = 500
    error_code: str = "DLI.0999"
    error_msg: str = "Server system error."
    retry_after: float = 1.0
    seconds: float = 0.0
    body: bytes = b""

    def matches(self, project_id: str | None, page: int | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.project_id is not None and self.project_id != project_id:
            return False
        return self.page is None or self.page == page


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    peer: tuple[str, int] = ("", 0)  # the client's address: one per TCP connection
    request_id: str = ""  # the X-Request-Id the answer carried


class Simulator:
    """The simulated service. ``start()`` binds 127.0.0.1 and serves in a background thread."""

    def __init__(self, projects: dict[str, list[dict[str, Any]]] | None = None, *,
                 credentials: dict[str, str] | None = None, temporary: dict[str, str] | None = None,
                 iam_users: dict[tuple[str, str], str] | None = None, latency: float = 0.0,
                 evolve: bool = False, evolve_every: float = 5.0, seed: int = 0, token_ttl: float = 24 * 3600,
                 live_durations: bool = False) -> None:
        self.projects: dict[str, list[dict[str, Any]]] = projects if projects is not None else {}
        self.credentials = dict(credentials if credentials is not None else {DEMO_AK: DEMO_SK})
        self.temporary = dict(temporary or {})  # ak -> the security token it must come with
        self.iam_users = dict(iam_users or {})  # (domain, user) -> password
        self.latency = latency
        self.evolve = evolve
        self.evolve_every = evolve_every
        self.live_durations = live_durations or evolve
        self.token_ttl = token_ttl
        self.faults: list[Fault] = []
        self.requests: deque[Recorded] = deque(maxlen=20000)
        self.request_count = 0
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (project_id, expires_at)
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._last_evolve = time.time()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Sorted, filtered job lists by (project, order, filters): paging 50,000 jobs must not sort
        # them again for each of 500 pages. Cleared whenever jobs change.
        self._selections: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    # --- lifecycle ---

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        sim = self

        class Handler(_Handler):
            simulator = sim

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="dli-simulator", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the simulator first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs for tests ---

    def add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = {t: (p, 0.0) for t, (p, _) in self.tokens.items()}

    def set_jobs(self, project_id: str, jobs: list[dict[str, Any]]) -> None:
        with self._lock:
            self.projects[project_id] = jobs
            self._selections.clear()

    def recorded(self, path_prefix: str = "/v1.0/") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def _take_faults(self, project_id: str | None, page: int | None) -> list[Fault]:
        with self._lock:
            hit = []
            for fault in self.faults:
                if fault.matches(project_id, page):
                    if fault.times is not None:
                        fault.times -= 1
                    hit.append(fault)
            return hit

    # --- evolution: a dashboard on the demo should look alive ---

    def _evolve(self) -> None:
        now = time.time()
        with self._lock:
            steps = int((now - self._last_evolve) / self.evolve_every)
            if steps <= 0:
                return
            self._last_evolve += steps * self.evolve_every
            for _ in range(min(steps, 100)):
                self._evolve_step(now)
            self._selections.clear()

    def _evolve_step(self, now: float) -> None:
        now_ms = int(now * 1000)
        jobs = [j for js in self.projects.values() for j in js]
        if not jobs:
            return
        rng = self._rng
        for job in rng.sample(jobs, k=min(3, len(jobs))):
            status = job["status"]
            if status == "job_running" and rng.random() < 0.3:
                job["restart_times"] = int(job.get("restart_times") or 0) + 1  # a failover
                job["start_time"] = now_ms
            elif status == "job_running" and rng.random() < 0.1:
                job["status"] = "job_running_exception"
            elif status == "job_running_exception" and rng.random() < 0.5:
                job["status"], job["start_time"] = "job_running", now_ms
                job["restart_times"] = int(job.get("restart_times") or 0) + 1
            elif status == "job_submitting":
                job["status"], job["start_time"] = "job_running", now_ms
            elif status == "job_init" and rng.random() < 0.3:
                job["status"] = "job_submitting"
        # The demo's showcase jobs keep their trouble, so alerts have something to fire on.
        for job in jobs:
            pinned = job.get("_pinned_status")
            if pinned:
                job["status"] = pinned
            if job["status"] == "job_running" and job.get("start_time"):
                job["duration"] = max(0, now_ms - int(job["start_time"]))

    # --- the API ---

    def list_jobs(self, project_id: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The list API's answer (status, body) for a verified request."""
        def bad(msg: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error_code": "DLI.0001", "error_msg": msg}

        try:
            limit = int(query.get("limit", "10"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return bad("Parameter limit or offset is not a number.")
        if not 1 <= limit <= 100 or offset < 0:
            return bad("Parameter limit must be 1 to 100 and offset >= 0.")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return bad("Parameter order must be asc or desc.")
        show = query.get("show_detail", "false")
        if show not in ("true", "false"):
            return bad("Parameter show_detail must be true or false.")
        if "job_type" in query and query["job_type"] not in JOB_TYPES:
            return bad("Parameter job_type is invalid.")
        filters = tuple(sorted((k, v) for k, v in query.items() if k in _FILTERS))
        with self._lock:
            jobs = self.projects.get(project_id)
            if jobs is None:
                return 404, {"error_code": "DLI.0023", "error_msg": f"Project {project_id} not found."}
            key = (project_id, order, filters)
            selected = self._selections.get(key)
            if selected is None:
                selected = [j for j in jobs if _matches(j, query)]
                selected.sort(key=lambda j: (j.get("create_time") or 0, j.get("job_id") or 0), reverse=order == "desc")
                self._selections[key] = selected
            page = selected[offset:offset + limit]
            now_ms = int(time.time() * 1000) if self.live_durations else None
            rendered = [_render(j, show == "true", project_id, now_ms) for j in page]
        return 200, {
            "is_success": "true",
            "message": "Querying of the job list succeeds.",
            "job_list": {"total_count": len(selected), "jobs": rendered},
        }

    def login(self, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            auth = body["auth"]
            user = auth["identity"]["password"]["user"]
            name, password, domain = user["name"], user["password"], user["domain"]["name"]
            project_id = auth["scope"]["project"]["id"]
        except (KeyError, TypeError):
            return 400, {"error_msg": "The request body is invalid.", "error_code": "IAM.0001"}, {}
        with self._lock:
            expected = self.iam_users.get((domain, name))
            if expected is None or not hmac.compare_digest(expected.encode(), str(password).encode()):
                return 401, {"error": {"code": 401, "message": "The username or password is wrong.",
                                       "title": "Unauthorized"}}, {}
            if project_id not in self.projects:
                return 400, {"error_msg": "The project does not exist.", "error_code": "IAM.0008"}, {}
            token = "MII" + secrets.token_urlsafe(48)
            expires = time.time() + self.token_ttl
            self.tokens[token] = (project_id, expires)
        expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return 201, {"token": {"expires_at": expires_at, "methods": ["password"],
                               "project": {"id": project_id}}}, {"X-Subject-Token": token}

    # --- authentication, implemented here from the algorithm's description ---

    def check_auth(self, method: str, raw_path: str, headers: dict[str, str], body: bytes,
                   project_id: str, *, rotated: bool = False) -> tuple[int, str, str] | None:
        """None when the request may pass, else (status, error_code, error_msg)."""
        token = headers.get("x-auth-token")
        if token is not None:
            with self._lock:
                entry = self.tokens.get(token)
            if entry is None:
                return 401, "APIG.0301", "Incorrect IAM authentication information: token is invalid."
            if entry[1] <= time.time():
                return 401, "APIG.0307", "The token must be updated."
            if entry[0] != project_id:
                return 403, "APIG.0302", "The token is not scoped to this project."
            return None
        auth = headers.get("authorization", "")
        match = re.fullmatch(r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)", auth)
        if not match:
            return 401, "APIG.0301", "Incorrect IAM authentication information: no AK/SK signature."
        ak, signed, signature = match.groups()
        sk = self.credentials.get(ak)
        if sk is not None and rotated:
            sk += "-rotated"
        if sk is None:
            return 401, "APIG.0301", "Incorrect IAM authentication information: unknown access key."
        names = signed.split(";")
        if "x-sdk-date" not in names or "host" not in names:
            return 401, "APIG.0301", "Incorrect IAM authentication information: host and x-sdk-date must be signed."
        if ak in self.temporary and (
            "x-security-token" not in names or headers.get("x-security-token") != self.temporary[ak]
        ):
            return 401, "APIG.0301", "Incorrect IAM authentication information: security token is invalid."
        date = headers.get("x-sdk-date", "")
        try:
            when = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return 401, "APIG.0301", "Incorrect IAM authentication information: x-sdk-date is invalid."
        if abs(time.time() - when) > MAX_CLOCK_SKEW:
            return 401, "APIG.0301", "Incorrect IAM authentication information: request expired."
        if any(n not in headers for n in names):
            return 401, "APIG.0301", "Incorrect IAM authentication information: a signed header is missing."
        expected = sign_request(sk, method, raw_path, headers=headers, names=names, body=body, date=date)
        if not hmac.compare_digest(expected, signature):
            return 401, "APIG.0301", "Incorrect IAM authentication information: verify aksk signature fail."
        return None


def _q(text: str) -> str:
    return quote(text, safe="~")


def sign_request(sk: str, method: str, raw_path: str, *, headers: dict[str, str], names: list[str],
                 body: bytes, date: str) -> str:
    """The SDK-HMAC-SHA256 signature of a received request, computed server-side."""
    path, _, query = raw_path.partition("?")
    segments = [_q(s) for s in unquote(path).split("/")]
    uri = "/".join(segments)
    if not uri.endswith("/"):
        uri += "/"
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{_q(k)}={_q(v)}" for k, v in pairs)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    lines = [method.upper(), uri, canonical_query, canonical_headers, ";".join(names),
             hashlib.sha256(body).hexdigest()]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    to_sign = f"SDK-HMAC-SHA256\n{date}\n{digest}"
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


_FILTERS = ("job_type", "status", "queue_name", "user_name", "name", "tags")


def _matches(job: dict[str, Any], query: dict[str, str]) -> bool:
    for key in ("job_type", "status", "queue_name", "user_name"):
        if key in query and job.get(key) != query[key]:
            return False
    if "name" in query and query["name"] not in str(job.get("name", "")):
        return False
    if "tags" in query:
        wanted = query["tags"]
        tags = job.get("_tags") or {}
        if not any(wanted in (k, f"{k}={v}") for k, v in tags.items()):
            return False
    return True


_DETAIL_ONLY = ("job_config", "user_id", "project_id", "main_class", "entrypoint_args")


def _render(job: dict[str, Any], show_detail: bool, project_id: str, now_ms: int | None = None) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if not k.startswith("_") and (show_detail or k not in _DETAIL_ONLY)}
    if show_detail:
        out.setdefault("project_id", project_id)
    if now_ms is not None and out.get("status") == "job_running" and out.get("start_time"):
        out["duration"] = max(0, now_ms - int(out["start_time"]))  # a running job's duration grows
    return out


def _sloppy_types(page: dict[str, Any]) -> dict[str, Any]:
    """The same data as a sloppy gateway might send it: numbers and booleans as strings, nulls."""
    for job in page.get("job_list", {}).get("jobs", []):
        for key, value in list(job.items()):
            if isinstance(value, bool):
                job[key] = str(value).lower()
            elif isinstance(value, int):
                job[key] = str(value)
        job["desc"] = None
        job["queue_name"] = job.get("queue_name") or None
    total = page.get("job_list", {}).get("total_count")
    if total is not None:
        page["job_list"]["total_count"] = str(total)
    return page


def _wrong_types(page: dict[str, Any]) -> dict[str, Any]:
    """A page whose last job says something no reading can fix: words where numbers belong."""
    listed = page.get("job_list", {}).get("jobs", [])
    if listed:
        listed[-1] = {**listed[-1], "restart_times": "several", "has_savepoint": "perhaps", "name": {"en": "x"}}
    return page


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway does
    # Headers and body leave in one write (see _send) with Nagle off: otherwise the body waits for
    # the client's delayed ACK of the headers, 40 ms a call, which no real gateway does.
    disable_nagle_algorithm = True
    server_version = "DLI-Simulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the tests read `simulator.requests` instead

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        host, port = self.client_address[:2]
        record = Recorded(method, path, query, headers, peer=(str(host), int(port)))
        with sim._lock:
            sim.requests.append(record)
            sim.request_count += 1
        request_id = record.request_id = uuid.uuid4().hex
        if sim.latency:
            sim._stop.wait(sim.latency)

        if method == "POST" and path == TOKEN_PATH:
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                payload = None
            status, answer, extra = sim.login(payload)
            self._send(status, json.dumps(answer).encode(), request_id, extra, record)
            return
        match = LIST_PATH.match(path)
        if method != "GET" or not match:
            self._send(404, json.dumps({"error_code": "APIG.0101", "error_msg": "The API does not exist.",
                                        "request_id": request_id}).encode(), request_id, {}, record)
            return
        project_id = unquote(match.group(1))
        try:
            page = int(query.get("offset", "0")) // max(1, int(query.get("limit", "10")))
        except ValueError:
            page = None
        faults = sim._take_faults(project_id, page)
        for fault in faults:
            if fault.kind in ("hang", "latency"):
                sim._stop.wait(fault.seconds)
        kinds = {f.kind: f for f in faults}
        if "drop" in kinds:
            record.status = -1
            self.close_connection = True
            self.connection.shutdown(2)
            return
        denied = sim.check_auth(method, self.path, headers, body, project_id, rotated="bad_signature" in kinds)
        if denied is not None:
            status, code, msg = denied
            self._send(status, json.dumps({"error_code": code, "error_msg": msg, "request_id": request_id}).encode(),
                       request_id, {}, record)
            return
        if sim.evolve:
            sim._evolve()
        if "rate_limit" in kinds:
            fault = kinds["rate_limit"]
            answer = {"error_code": "APIG.0308", "error_msg": "The throttling threshold has been reached.",
                      "request_id": request_id}
            self._send(429, json.dumps(answer).encode(), request_id, {"Retry-After": f"{fault.retry_after:g}"}, record)
            return
        if "error" in kinds:
            fault = kinds["error"]
            answer = {"error_code": fault.error_code, "error_msg": fault.error_msg}
            self._send(fault.status, json.dumps(answer).encode(), request_id, {}, record)
            return
        if "not_success" in kinds:
            answer = {"is_success": "false", "message": kinds["not_success"].error_msg}
            self._send(200, json.dumps(answer).encode(), request_id, {}, record)
            return
        if "body" in kinds:
            self._send(200, kinds["body"].body, request_id, {}, record)
            return
        if "bad_shape" in kinds:
            self._send(200, b'{"is_success": "true", "job_list": "none"}', request_id, {}, record)
            return
        status, answer = sim.list_jobs(project_id, query)
        if "sloppy_types" in kinds and status == 200:
            answer = _sloppy_types(answer)
        if "wrong_types" in kinds and status == 200:
            answer = _wrong_types(answer)
        data = json.dumps(answer, separators=(",", ":")).encode()
        if "truncate" in kinds:
            data = data[: max(1, len(data) // 2)]
        self._send(status, data, request_id, {}, record)

    def _send(self, status: int, data: bytes, request_id: str, extra: dict[str, str], record: Recorded) -> None:
        record.status = status
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        head = [f"{self.protocol_version} {status} {phrase}", f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}", "Content-Type: application/json;charset=UTF-8",
                f"Content-Length: {len(data)}", f"X-Request-Id: {request_id}",
                *(f"{key}: {value}" for key, value in extra.items())]
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its deadline); nothing to do


# --- data sets ---

def make_job(job_id: int, rng: random.Random, now_ms: int, status: str | None = None) -> dict[str, Any]:
    """One plausible job, as the API's show_detail=true answer holds it."""
    status = status or rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    created = now_ms - rng.randint(3600, 90 * 86400) * 1000
    started = 0
    if status in ("job_running", "job_running_exception", "job_savepointing", "job_canceling",
                  "job_cancel_success", "job_finish", "job_arrearage_stopped", "job_idle"):
        started = created + rng.randint(60, 3600) * 1000
    duration = max(0, now_ms - started) if status == "job_running" and started else (
        rng.randint(60, 86400) * 1000 if started else 0)
    name = f"{rng.choice(NAME_PARTS)}-{rng.choice(NAME_VERBS)}-{job_id % 1000:03d}"
    running_like = status in ("job_running", "job_running_exception", "job_savepointing")
    return {
        "job_id": job_id,
        "name": name,
        "desc": f"Demo job {name}",
        "user_name": rng.choice(USERS),
        "job_type": rng.choice(JOB_TYPES),
        "status": status,
        "status_desc": "",
        "create_time": created,
        "start_time": started,
        "duration": duration,
        "root_id": -1,
        "graph_editor_enabled": False,
        "has_savepoint": rng.random() < 0.3,
        "user_id": "0c9f3a7e5d0a4b2c8e1f6a7b8c9d0e1f",
        "run_mode": rng.choice(RUN_MODES),
        "queue_name": rng.choice(QUEUES),
        "edge_group_ids": [],
        "restart_times": rng.randint(0, 3) if running_like else 0,
        "savepoint_path": "",
        "update_time": created,
        "job_config": {
            "checkpoint_enabled": rng.random() < 0.7,
            "checkpoint_mode": "exactly_once",
            "checkpoint_interval": 10,
            "cu_number": rng.choice((2, 4, 8, 16)),
            "manager_cu_number": 1,
            "parallel_number": rng.choice((1, 2, 4, 8)),
            "restart_when_exception": rng.random() < 0.6,
            "resume_checkpoint": False,
            "resume_max_num": -1,
            "tm_cus": 1,
            "tm_slot_num": 1,
            "flink_version": rng.choice(("1.12", "1.15", "1.17")),
            "feature": "basic",
            "real_cu_number": 0,
        },
        "_tags": {"team": rng.choice(("growth", "risk", "platform"))},
    }


def demo_projects(seed: int = 7, sizes: tuple[int, ...] = (48, 24),
                  now: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo's data: every job type, run mode and queue, and the troubled jobs alerts look for."""
    rng = random.Random(seed)
    now_ms = int((time.time() if now is None else now) * 1000)
    projects = {}
    next_id = 10001
    for index, size in enumerate(sizes):
        pid = DEMO_PROJECTS[index % len(DEMO_PROJECTS)] if index < len(DEMO_PROJECTS) else f"{index:032x}"
        projects[pid] = [make_job(next_id + n, rng, now_ms) for n in range(size)]
        next_id += size
    first = projects[next(iter(projects))]
    showcase = ("job_running_exception", "job_submit_fail", "job_arrearage_stopped")
    for offset, (job, status) in enumerate(zip(first[:3], showcase, strict=True)):
        job["status"] = job["_pinned_status"] = status
        job["name"] = ("payments-fraud-detect", "clicks-window-agg", "ads-billing-sink")[offset]
        job["start_time"] = job["start_time"] or job["create_time"] + 60000
    # Every job type, run mode and queue appears at least once, whatever the seed.
    for i, job in enumerate(first[3:3 + 12]):
        job["job_type"] = JOB_TYPES[i % 3]
        job["run_mode"] = RUN_MODES[(i // 3) % 3]
        job["queue_name"] = QUEUES[i % len(QUEUES)]
        job["status"] = "job_running"
        job["start_time"] = job["start_time"] or job["create_time"] + 60000
        job["duration"] = max(0, now_ms - job["start_time"])
    return projects


def synthetic_projects(jobs: int, projects: int = 1, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Large data sets for benchmarks: ``jobs`` jobs in each of ``projects`` projects."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out = {}
    for p in range(projects):
        base = (p + 1) * 10_000_000
        out[f"{p + 1:032x}"] = [make_job(base + i, rng, now_ms) for i in range(jobs)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--jobs", type=int, default=0, help="jobs per project (default: the demo's data)")
    parser.add_argument("--projects", type=int, default=1, help="projects, with --jobs")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--evolve", action="store_true", help="let jobs change over time")
    parser.add_argument("--live-durations", action="store_true",
                        help="running jobs' durations grow with the clock, as in the real API")
    args = parser.parse_args(argv)
    data = synthetic_projects(args.jobs, args.projects) if args.jobs else demo_projects()
    sim = Simulator(data, latency=args.latency, evolve=args.evolve,
                    live_durations=args.live_durations).start(port=args.port)
    print(json.dumps({"url": sim.url, "ak": DEMO_AK, "sk": DEMO_SK, "project_ids": list(data)}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
