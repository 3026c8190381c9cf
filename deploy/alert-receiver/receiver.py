"""A webhook receiver for the compose kit: logs each Alertmanager notification as one line.

Alertmanager posts JSON to http://alert-receiver:5001/<receiver>; this prints the receiver, the
group, its status and each alert's name, severity and summary, so `docker compose logs -f
alert-receiver` shows what would have paged. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20  # Alertmanager's notifications are small; refuse anything bigger


def describe(path: str, payload: dict[str, Any]) -> str:
    alerts = payload.get("alerts") or []
    group = ",".join(f"{k}={v}" for k, v in sorted((payload.get("groupLabels") or {}).items()))
    parts = [f"receiver={path.strip('/') or '-'}", f"status={payload.get('status', '?')}", f"group={{{group}}}",
             f"alerts={len(alerts)}"]
    for alert in alerts:
        labels = alert.get("labels") or {}
        job = labels.get("name") or labels.get("queue") or labels.get("instance") or ""
        parts.append(f"[{alert.get('status', '?')} {labels.get('alertname', '?')} {labels.get('severity', '?')} {job}]")
    summary = next((a.get("annotations", {}).get("summary") for a in alerts if a.get("annotations")), "")
    return " ".join(parts) + (f" summary={json.dumps(summary)}" if summary else "")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            line = describe(self.path, payload if isinstance(payload, dict) else {})
        except ValueError:
            line = f"receiver={self.path.strip('/')} not JSON"
        print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per notification, printed above


def main() -> int:
    port = int(os.environ.get("PORT", "5001"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104  (inside its container)
    print(f"alert receiver listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
