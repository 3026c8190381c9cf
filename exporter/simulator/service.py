"""The simulated service: its projects and jobs, IAM users and tokens, recorded requests, fault
knobs, and the answers of the list-jobs and login APIs (the HTTP handler serves them)."""

from __future__ import annotations

import hmac
import random
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

from .data import DEMO_AK, DEMO_SK, JOB_TYPES, describe, queues_for
from .gateway import Gateway
from .handler import Handler as BaseHandler
from .iam import Account
from .model import Fault, Recorded
from .signature import Denied, access_key, verify


class Simulator:
    """The simulated service. ``start()`` binds 127.0.0.1 and serves in a background thread.

    Each view carries only its documented fields (dli-api.md, "Two views"); with
    ``sparse_summary`` the summary view also lacks ``queue_name``, ``start_time`` and
    ``restart_times``, as the documentation's example answer does. ``gateway`` throttles and locks
    keys as the real API gateway does (the lock-out is always on; throttling with a budget)."""

    def __init__(self, projects: dict[str, list[dict[str, Any]]] | None = None, *,
                 credentials: dict[str, str] | None = None, temporary: dict[str, str] | None = None,
                 iam_users: dict[tuple[str, str], str] | None = None, latency: float = 0.0,
                 evolve: bool = False, evolve_every: float = 5.0, seed: int = 0, token_ttl: float = 24 * 3600,
                 live_durations: bool = False, sparse_summary: bool = False,
                 gateway: Gateway | None = None, regions: dict[str, str] | None = None,
                 queues: dict[str, list[dict[str, Any]]] | None = None, account: Account | None = None,
                 denied: set[str] | None = None) -> None:
        self.sparse_summary = sparse_summary
        self.regions = dict(regions or {})  # project id -> its region: found only under that prefix
        self.gateway = gateway if gateway is not None else Gateway()
        self.projects: dict[str, list[dict[str, Any]]] = projects if projects is not None else {}
        # Each project's queues: as given, else those its jobs name (and the SQL queue).
        self.queues: dict[str, list[dict[str, Any]]] = (
            dict(queues) if queues is not None else {pid: queues_for(jobs) for pid, jobs in self.projects.items()})
        # IAM's view of the account: its projects (by default, each of these named after its region).
        self.account = account if account is not None else Account.of(list(self.projects), self.regions)
        self.denied = set(denied or ())  # projects whose lists are refused with 403 (no DLI permission there)
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
        self.counts: dict[str, int] = {}  # requests by what they asked for (jobs, queues, tokens, other)
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

        class Handler(BaseHandler):
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
            self.queues.setdefault(project_id, queues_for(jobs))
            self._selections.clear()

    def set_queues(self, project_id: str, queues: list[dict[str, Any]]) -> None:
        with self._lock:
            self.queues[project_id] = queues

    def recorded(self, path_prefix: str = "/v1.0/") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def _take_faults(self, resource: str, project_id: str | None, page: int | None) -> list[Fault]:
        with self._lock:
            hit = []
            for fault in self.faults:
                if fault.matches(resource, project_id, page):
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
            if job.get("_described") != job["status"]:  # a new status: DLI's reason for it
                describe(job, rng)
            if job["status"] == "job_running" and job.get("start_time"):
                job["duration"] = max(0, now_ms - int(job["start_time"]))

    # --- the API ---

    def list_jobs(self, project_id: str, query: dict[str, str], region: str = "") -> tuple[int, dict[str, Any]]:
        """The list API's answer (status, body) for a verified request, at ``region``'s endpoint."""
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
        if "tags" in query and not all("=" in pair for pair in query["tags"].split(",")):
            return bad("Parameter tags must be key=value pairs, separated by commas.")
        filters = tuple(sorted((k, v) for k, v in query.items() if k in _FILTERS))
        with self._lock:
            jobs = self.projects.get(project_id)
            home = self.regions.get(project_id)
            if jobs is None or (region and home is not None and home != region):
                return 404, {"error_code": "DLI.0023", "error_msg": f"Project {project_id} not found."}
            key = (project_id, order, filters)
            selected = self._selections.get(key)
            if selected is None:
                selected = [j for j in jobs if _matches(j, query)]
                selected.sort(key=lambda j: (j.get("create_time") or 0, j.get("job_id") or 0), reverse=order == "desc")
                self._selections[key] = selected
            page = selected[offset:offset + limit]
            now_ms = int(time.time() * 1000) if self.live_durations else None
            rendered = [_render(j, show == "true", project_id, now_ms, sparse=self.sparse_summary) for j in page]
        return 200, {
            "is_success": "true",
            "message": "Querying of the job list succeeds.",
            "job_list": {"total_count": len(selected), "jobs": rendered},
        }

    def list_queues(self, project_id: str, query: dict[str, str], region: str = "") -> tuple[int, dict[str, Any]]:
        """The queue list's answer: only SQL queues unless another ``queue_type`` is asked for
        (as documented), ``is_success`` a bool (unlike the job list's string), and a general
        queue's ``used_cu`` the CUs its running jobs ask."""
        queue_type = query.get("queue_type", "sql")
        if queue_type not in ("sql", "general", "all"):
            return 400, {"error_code": "DLI.0001", "error_msg": "Parameter queue_type is invalid."}
        with self._lock:
            queues = self.queues.get(project_id)
            home = self.regions.get(project_id)
            if queues is None or (region and home is not None and home != region):
                return 404, {"error_code": "DLI.0023", "error_msg": f"Project {project_id} not found."}
            used: dict[str, int] = {}
            for job in self.projects.get(project_id, []):
                if job.get("status") == "job_running":
                    config = job.get("job_config") or {}
                    cus = int(config.get("real_cu_number") or config.get("cu_number") or 0)
                    used[str(job.get("queue_name"))] = used.get(str(job.get("queue_name")), 0) + cus
            rendered = []
            for queue in queues:
                if queue_type != "all" and queue.get("queue_type") != queue_type:
                    continue
                out = dict(queue)
                if out.get("queue_type") == "general":
                    out["used_cu"] = float(used.get(str(out.get("queue_name")), 0))
                rendered.append(out)
        return 200, {"is_success": True, "message": "", "queues": rendered}

    def login(self, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        """A password login, scoped to a project or to the account (its domain, by name): the
        token's scope is the project id, or "" for the account."""
        try:
            auth = body["auth"]
            user = auth["identity"]["password"]["user"]
            name, password, domain = user["name"], user["password"], user["domain"]["name"]
            scope = auth["scope"]
            project_id = scope["project"]["id"] if "project" in scope else ""
            if not project_id and scope["domain"]["name"] != domain:
                raise KeyError("domain")
        except (KeyError, TypeError):
            return 400, {"error_msg": "The request body is invalid.", "error_code": "IAM.0001"}, {}
        with self._lock:
            expected = self.iam_users.get((domain, name))
            if expected is None or not hmac.compare_digest(expected.encode(), str(password).encode()):
                return 401, {"error": {"code": 401, "message": "The username or password is wrong.",
                                       "title": "Unauthorized"}}, {}
            if project_id and project_id not in self.projects:
                return 400, {"error_msg": "The project does not exist.", "error_code": "IAM.0008"}, {}
            token = "MII" + secrets.token_urlsafe(48)
            expires = time.time() + self.token_ttl
            self.tokens[token] = (project_id, expires)
        expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        scoped = {"project": {"id": project_id}} if project_id else {"domain": {"name": domain}}
        return 201, {"token": {"expires_at": expires_at, "methods": ["password"], **scoped}}, {"X-Subject-Token": token}

    # --- authentication, implemented here from the algorithm's description ---

    def token_scope(self, headers: dict[str, str]) -> str | None:
        """The scope of the request's token ("" for the account), None without one (or an unknown one)."""
        token = headers.get("x-auth-token")
        with self._lock:
            entry = self.tokens.get(token) if token is not None else None
        return entry[0] if entry is not None else None

    def check_auth(self, method: str, raw_path: str, headers: dict[str, str], body: bytes,
                   project_id: str, *, rotated: bool = False) -> Denied | None:
        """None when the request may pass, else (status, error_code, error_msg). ``project_id``
        "" for IAM's global calls (a token must then be scoped to the account)."""
        token = headers.get("x-auth-token")
        if token is not None:
            with self._lock:
                entry = self.tokens.get(token)
            if entry is None:
                return 401, "APIGW.0301", "Incorrect IAM authentication information: token is invalid."
            if entry[1] <= time.time():
                return 401, "APIGW.0307", "The token must be updated."
            if entry[0] != project_id:
                scope = "project" if project_id else "account"
                return 403, "APIGW.0302", f"The token is not scoped to this {scope}."
            return None
        ak = access_key(headers)
        if ak is not None and self.gateway.locked(ak):
            return 401, "APIGW.0301", "Incorrect IAM authentication information: the access key is locked."
        denied = verify(method, raw_path, headers, body, credentials=self.credentials, temporary=self.temporary,
                        rotated=rotated)
        if ak is not None:
            self.gateway.authenticated(ak, denied is None)
        return denied

    def admit(self, headers: dict[str, str]) -> bool:
        """The gateway's throttling, per caller (access key or token): False beyond the budget."""
        caller = access_key(headers) or headers.get("x-auth-token") or ""
        return self.gateway.admit(caller)


_FILTERS = ("job_type", "status", "queue_name", "user_name", "name", "tags")


def _matches(job: dict[str, Any], query: dict[str, str]) -> bool:
    for key in ("job_type", "status", "queue_name", "user_name"):
        if key in query and job.get(key) != query[key]:
            return False
    if "name" in query and query["name"] not in str(job.get("name", "")):
        return False
    if "tags" in query:  # key=value pairs, comma-separated: a job has them all
        tags = job.get("_tags") or {}
        pairs = [pair.partition("=") for pair in query["tags"].split(",")]
        if not all(tags.get(key) == value for key, _, value in pairs):
            return False
    return True


# The fields each view alone carries (dli-api.md, "Two views", from the SDK's field notes).
SUMMARY_ONLY = frozenset({"duration", "user_name", "root_id", "sql_body", "main_class", "execution_graph",
                          "update_time"})
DETAIL_ONLY = frozenset({"run_mode", "job_config", "user_id", "project_id", "entrypoint_args"})
# What the documentation's example summary answer also lacks (the sparse mode).
SPARSE_SUMMARY_LACKS = frozenset({"queue_name", "start_time", "restart_times"})


def _render(job: dict[str, Any], show_detail: bool, project_id: str, now_ms: int | None = None, *,
            sparse: bool = False) -> dict[str, Any]:
    left_out = SUMMARY_ONLY if show_detail else (DETAIL_ONLY | SPARSE_SUMMARY_LACKS if sparse else DETAIL_ONLY)
    out = {k: v for k, v in job.items() if not k.startswith("_") and k not in left_out}
    if show_detail:
        out.setdefault("project_id", project_id)
    elif now_ms is not None and job.get("status") == "job_running" and job.get("start_time"):
        out["duration"] = max(0, now_ms - int(job["start_time"]))  # a running job's duration grows
    return out
