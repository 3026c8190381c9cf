"""The simulator's HTTP handler: routes, faults, and answers written in one piece (headers and
body in one write, with Nagle off, as a real gateway sends them)."""

from __future__ import annotations

import json
import re
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from .iam import PATHS as IAM_PATHS
from .model import Fault, Recorded

if TYPE_CHECKING:
    from .service import Simulator

# The list API, optionally under a region prefix (/cn-north-4/v1.0/...): one simulator then plays
# the endpoints of several regions, as DLI_EXPORTER_ENDPOINT=http://127.0.0.1:PORT/{region} asks.
LIST_PATH = re.compile(r"^(?:/([a-z0-9]+(?:-[a-z0-9]+)+))?/v1\.0/([^/]+)/(streaming/jobs|queues)/?$")
RESOURCES = {"streaming/jobs": "jobs", "queues": "queues"}
TOKEN_PATH = "/v3/auth/tokens"  # noqa: S105  (a path, not a secret)
# Not an API: what the benchmark asks a simulator in another process, the requests it has had.
COUNTS_PATH = "/_simulator/counts"


def _records(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The jobs or the queues of an answer."""
    listed = page.get("job_list", {}).get("jobs") if "job_list" in page else page.get("queues")
    return listed if isinstance(listed, list) else []


def _sloppy_types(page: dict[str, Any]) -> dict[str, Any]:
    """The same data as a sloppy gateway might send it: numbers and booleans as strings, nulls."""
    for record in _records(page):
        for key, value in list(record.items()):
            if isinstance(value, bool):
                record[key] = str(value).lower()
            elif isinstance(value, int | float):
                record[key] = str(value)
        if "job_id" in record:
            record["desc"] = None
            record["queue_name"] = record.get("queue_name") or None
    total = page.get("job_list", {}).get("total_count")
    if total is not None:
        page["job_list"]["total_count"] = str(total)
    return page


def _wrong_types(page: dict[str, Any]) -> dict[str, Any]:
    """A page whose last record says something no reading can fix: words where numbers belong."""
    listed = _records(page)
    if listed and "job_id" in listed[-1]:
        listed[-1] = {**listed[-1], "restart_times": "several", "has_savepoint": "perhaps", "name": {"en": "x"}}
    elif listed:
        listed[-1] = {**listed[-1], "cu_count": "many", "is_restarting": "perhaps", "engine": {"en": "x"}}
    return page


class Handler(BaseHTTPRequestHandler):
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
        match = LIST_PATH.match(path)
        kind = RESOURCES[match.group(3)] if match else "tokens" if path == TOKEN_PATH else \
            "iam" if path in IAM_PATHS else "other"
        if path == COUNTS_PATH:
            self._send(200, json.dumps(sim.counts).encode(), "", {}, record)
            return
        with sim._lock:
            sim.requests.append(record)
            sim.request_count += 1
            sim.counts[kind] = sim.counts.get(kind, 0) + 1
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
        if method == "GET" and path in IAM_PATHS:
            self._iam(path, headers, body, request_id, record)
            return
        if method != "GET" or not match:
            self._send(404, json.dumps({"error_code": "APIGW.0101", "error_msg": "The API does not exist.",
                                        "request_id": request_id}).encode(), request_id, {}, record)
            return
        project_id = unquote(match.group(2))
        record.region = match.group(1) or ""
        resource = RESOURCES[match.group(3)]
        try:
            page = int(query.get("offset", "0")) // max(1, int(query.get("limit", "10")))
        except ValueError:
            page = None
        faults = sim._take_faults(resource, project_id, page)
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
        if not sim.admit(headers):
            answer = {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached.",
                      "request_id": request_id}
            self._send(429, json.dumps(answer).encode(), request_id, {}, record)  # no Retry-After, as documented
            return
        if project_id in sim.denied:  # the credential is good, but may not use DLI in this project
            answer = {"error_code": "DLI.0003", "error_msg": "Permission denied: no DLI permission in this project.",
                      "request_id": request_id}
            self._send(403, json.dumps(answer).encode(), request_id, {}, record)
            return
        if sim.evolve:
            sim._evolve()
        if "rate_limit" in kinds:
            fault = kinds["rate_limit"]
            answer = {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached.",
                      "request_id": request_id}
            header = fault.retry_after_header if fault.retry_after_header is not None else f"{fault.retry_after:g}"
            self._send(429, json.dumps(answer).encode(), request_id, {"Retry-After": header}, record)
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
        if "oversize" in kinds:
            self._stream_oversize(kinds["oversize"], request_id, record)
            return
        if "body" in kinds:
            self._send(200, kinds["body"].body, request_id, {}, record)
            return
        if "bad_shape" in kinds:
            shapeless = b'{"is_success": true, "queues": "none"}' if resource == "queues" else \
                b'{"is_success": "true", "job_list": "none"}'
            self._send(200, shapeless, request_id, {}, record)
            return
        if resource == "queues":
            status, answer = sim.list_queues(project_id, query, record.region)
        else:
            status, answer = sim.list_jobs(project_id, query, record.region)
        if "sloppy_types" in kinds and status == 200:
            answer = _sloppy_types(answer)
        if "wrong_types" in kinds and status == 200:
            answer = _wrong_types(answer)
        data = json.dumps(answer, separators=(",", ":")).encode()
        if "truncate" in kinds:
            data = data[: max(1, len(data) // 2)]
        self._send(status, data, request_id, {}, record)

    def _iam(self, path: str, headers: dict[str, str], body: bytes, request_id: str, record: Recorded) -> None:
        """IAM's global calls: the account's domain and projects (faults of resource "iam")."""
        sim = self.simulator
        faults = {f.kind: f for f in sim._take_faults("iam", None, None)}
        for fault in faults.values():
            if fault.kind in ("hang", "latency"):
                sim._stop.wait(fault.seconds)
        denied = sim.check_auth("GET", self.path, headers, body, "", rotated="bad_signature" in faults)
        if denied is None and not sim.admit(headers):
            denied = (429, "APIGW.0308", "The throttling threshold has been reached.")
        if denied is None and "error" in faults:
            denied = (faults["error"].status, faults["error"].error_code, faults["error"].error_msg)
        if denied is not None:
            status, code, msg = denied
            self._send(status, json.dumps({"error_code": code, "error_msg": msg, "request_id": request_id}).encode(),
                       request_id, {}, record)
            return
        status, answer = sim.account.answer(path, headers, signed="x-auth-token" not in headers)
        data = json.dumps(answer).encode()
        if "truncate" in faults:
            data = data[: max(1, len(data) // 2)]
        self._send(status, data, request_id, {}, record)

    def _stream_oversize(self, fault: Fault, request_id: str, record: Recorded) -> None:
        """A page whose one job has a ``fault.size``-byte name, written a piece at a time: the
        simulator never holds it, so it can be far larger than anyone should read."""
        record.status = 200
        head = b'{"is_success":true,"message":"","job_count":1,"jobs":[{"job_id":1,"status":"job_running","name":"'
        tail = b'"}]}'
        piece = b"x" * 65536
        framing = ({"Transfer-Encoding": "chunked"} if fault.chunked
                   else {"Content-Length": str(len(head) + fault.size + len(tail))})

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if fault.chunked else data)

        try:
            self.wfile.write(self._head(200, request_id, framing))
            write(head)
            left = fault.size
            while left > 0:
                write(piece[:left])
                left -= len(piece)
            write(tail)
            if fault.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should
        self.close_connection = True

    def _head(self, status: int, request_id: str, extra: dict[str, str]) -> bytes:
        """The status line and headers of an answer, ``extra`` (its framing among them) last."""
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        head = [f"{self.protocol_version} {status} {phrase}", f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}", "Content-Type: application/json;charset=UTF-8",
                f"X-Request-Id: {request_id}", *(f"{key}: {value}" for key, value in extra.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    def _send(self, status: int, data: bytes, request_id: str, extra: dict[str, str], record: Recorded) -> None:
        record.status = status
        try:
            self.wfile.write(self._head(status, request_id, {"Content-Length": str(len(data)), **extra}) + data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its deadline); nothing to do
