"""Logging: one line per event, logfmt by default (as Prometheus' own tools log), JSON on request."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(),
                           "logger": record.name, "msg": record.getMessage()}
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        # The exception's type and text only: a traceback spans lines, and its frames may hold secrets.
        exc = record.exc_info[1]
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    # Any other character that is not printable (control characters, U+2028 and friends) could
    # break the line or fool a terminal: written as an escape, so one event stays one line.
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (line and record separators, other
    control characters) written as an escape: a message that quotes a user's input stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' ="\\'):
        return text
    return '"' + "".join(_escape(c) for c in text) + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


# Characters json leaves raw with ensure_ascii=False that a reader may take for a line break, and
# lone surrogates (from bytes of the environment that are not UTF-8), which no stream can encode.
_JSON_UNSAFE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # ensure_ascii=False keeps names readable; json escapes the ASCII control characters and
        # the rest that is unsafe is escaped here.
        text = json.dumps(_fields(record), default=str, ensure_ascii=False)
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def setup(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # urllib3 logs every connection at DEBUG, with the full URL: keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # Python prints an uncaught error in a thread as a multi-line traceback on stderr; make it
    # one event like any other (and keep the traceback's frames, which may hold secrets, out).
    threading.excepthook = _thread_excepthook


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread else ""
    error = f"{args.exc_type.__name__}: {args.exc_value}"
    logging.getLogger("exporter").error("unhandled error in a thread", extra={"thread_name": thread, "error": error})
