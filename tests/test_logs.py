"""Logging: one line per event in logfmt (the default) and JSON, whatever the values hold."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import logs
from tests.helpers import examples, restored_logging

NASTY = "line\nbreak\rreturn\ttab \x1b[31mred\x00nul\u2028sep\u2029para \"quoted\" back\\slash 名字 =eq"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    with restored_logging():
        yield


def emit(fmt: str, build: object = None, **extra: object) -> str:
    stream = io.StringIO()
    logs.setup("debug", fmt, stream)
    logging.getLogger("exporter.test").warning("sweep failed: %s", NASTY, extra=extra)
    return stream.getvalue()


def logfmt_pairs(line: str) -> dict[str, str]:
    """A small logfmt reader: key=value or key="escaped value"."""
    out: dict[str, str] = {}
    i = 0
    while i < len(line):
        eq = line.index("=", i)
        key = line[i:eq]
        i = eq + 1
        if line[i] == '"':
            i += 1
            value = []
            while line[i] != '"':
                if line[i] == "\\":
                    nxt = line[i + 1]
                    if nxt in "uU":
                        width = 4 if nxt == "u" else 8
                        value.append(chr(int(line[i + 2:i + 2 + width], 16)))
                        i += 2 + width
                        continue
                    value.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                    i += 2
                    continue
                value.append(line[i])
                i += 1
            i += 2  # the quote and the space
            out[key] = "".join(value)
        else:
            end = line.find(" ", i)
            end = len(line) if end < 0 else end
            out[key] = line[i:end]
            i = end + 1
    return out


@pytest.mark.usefixtures("restore_logging")
def test_logfmt_is_one_line_and_reads_back() -> None:
    text = emit("logfmt", project_id="p 1", job=NASTY)
    assert text.endswith("\n") and len(text[:-1].split("\n")) == 1 and len(text.splitlines()) == 1
    pairs = logfmt_pairs(text[:-1])
    assert pairs["level"] == "warning" and pairs["logger"] == "exporter.test"
    assert pairs["msg"] == "sweep failed: " + NASTY and pairs["job"] == NASTY and pairs["project_id"] == "p 1"


@pytest.mark.usefixtures("restore_logging")
def test_json_is_one_line_and_reads_back() -> None:
    text = emit("json", job=NASTY)
    assert len(text.splitlines()) == 1
    event = json.loads(text)
    assert event["msg"] == "sweep failed: " + NASTY and event["job"] == NASTY and event["level"] == "warning"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_an_exception_is_one_line_without_a_traceback(fmt: str) -> None:
    stream = io.StringIO()
    logs.setup("info", fmt, stream)
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("exporter").exception("it failed")
    assert len(stream.getvalue().splitlines()) == 1 and "Traceback" not in stream.getvalue()
    assert "ValueError: bad" in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_an_error_in_a_thread_is_one_line() -> None:
    stream = io.StringIO()
    logs.setup("info", "logfmt", stream)

    def boom() -> None:
        raise RuntimeError("thread\nfailure")

    thread = threading.Thread(target=boom, name="worker-1")
    thread.start()
    thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "thread_name=worker-1" in lines[0] and "RuntimeError: thread\\nfailure" in lines[0]


@pytest.mark.usefixtures("restore_logging")
@settings(max_examples=examples(200), deadline=None)
@given(st.text(st.one_of(st.characters(),
                         st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]))))
def test_any_text_stays_on_one_line_in_both_formats(value: str) -> None:
    for fmt in ("logfmt", "json"):
        stream = io.StringIO()
        logs.setup("info", fmt, stream)
        logging.getLogger("exporter").info("x", extra={"value": value})
        text = stream.getvalue()
        assert len(text.splitlines()) == 1, (fmt, text)
        text.encode("utf-8")  # lone surrogates escaped: the line can be written to any UTF-8 stream
        if fmt == "json":
            assert json.loads(text)["value"] == value
        else:
            assert logfmt_pairs(text[:-1])["value"] == value


@pytest.mark.parametrize(("value", "written"), [
    ("a=b", '"a=b"'), ("x y", '"x y"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'),
    ("", '""'), ("plain", "plain"), ("p-1_2.3", "p-1_2.3"),
])
def test_logfmt_quotes_what_would_break_a_pair(value: str, written: str) -> None:
    """A value with '=', a space, a quote or a backslash (or nothing at all) is quoted, so that
    readers split key=value pairs where the writer meant."""
    assert logs._logfmt_value(value) == written
