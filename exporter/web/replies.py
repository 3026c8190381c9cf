"""What every part of the web side answers alike: plain-text replies, and the path that stays open
whatever guards the others (liveness must not need credentials, nor fail because scrapes are busy)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

HEALTH_PATH = "/healthz"
UNGUARDED = frozenset({HEALTH_PATH})  # no basic auth, rate limit or request cap in front of these

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def reply(start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8",
          extra: Sequence[tuple[str, str]] = ()) -> list[bytes]:
    """Start the response and give its body: ``status`` with ``body``, its length, and ``extra`` headers."""
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return [body]


def plain(start_response: StartResponse, status: str, text: str = "",
          extra: Sequence[tuple[str, str]] = ()) -> list[bytes]:
    """A one-line plain-text answer: ``text``, or the status' reason phrase in lower case."""
    body = (text or status.split(" ", 1)[1].lower()).rstrip("\n") + "\n"
    return reply(start_response, status, body.encode(), extra=extra)
