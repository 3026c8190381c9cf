"""No raw input in any message: every place that echoes a user's or the API's text (setting
errors, web-config errors, log fields, /probe and other 4xx bodies, --check) escapes control and
line-breaking characters with one helper, ``logs.one_line``, so each message stays one line and
cannot rewrite a terminal. The log formats are covered in test_logs.py, the whole environment in
test_properties.py; this file covers the rest, and the explicit cases the issue names."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter import cli, logs
from exporter.preflight import run_check
from exporter.simulator import Fault, Simulator
from exporter.wiring import Exporter
from tests.helpers import (
    COMMAND,
    answering,
    clean_environ,
    examples,
    jobs,
    restored_logging,
    running_exporter,
    settings_for,
)

# What breaks a line or drives a terminal: CR, LF, ESC, BEL, NEL, the Unicode separators, DEL.
BREAKERS = ["\r", "\n", "\x1b", "\x07", "\x85", "\u2028", "\u2029", "\x7f", "\x00"]
HOSTILE = st.text(st.one_of(st.sampled_from(BREAKERS), st.characters(codec="utf-8")), min_size=1, max_size=40)


def clean(line: str) -> bool:
    """A line a terminal shows as it is: every character printable."""
    return line.isprintable()


# --- settings: the cases the issue names, as a user meets them (the console script) ---

@pytest.mark.parametrize("char", ["\r", "\n", "\x1b", "\x07"], ids=["CR", "LF", "ESC", "BEL"])
@pytest.mark.parametrize("name", ["DLI_EXPORTER_LISTEN_ADDRESS", "DLI_EXPORTER_WEB_CONFIG_FILE",
                                  "DLI_EXPORTER_REGION", "DLI_EXPORTER_PROJECT_IDS"])
def test_a_setting_holding_a_control_character_is_one_stderr_line_and_exit_2(name: str, char: str) -> None:
    env = clean_environ({"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK", "DLI_EXPORTER_REGION": "cn-north-4",
                         "DLI_EXPORTER_PROJECT_IDS": "p1", "DLI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1:0",
                         name: f"x{char}:1"})
    result = subprocess.run([COMMAND], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.endswith("\n"), repr(result.stderr)
    assert clean(result.stderr[:-1]) and name in result.stderr and "Traceback" not in result.stderr


# --- the web configuration's content ---

@contextlib.contextmanager
def _env(**env: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("DLI_EXPORTER_", "HUAWEICLOUD_"))]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        with restored_logging():
            yield


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["key", "value", "username", "cert", "yaml"]), HOSTILE)
@example("key", "a\rb")
@example("cert", "x\x1b[2Jy")
def test_a_web_config_quoting_hostile_text_is_one_line(tmp_path: Path, where: str, text: str) -> None:
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    body = {"key": f'"{quoted}": 1\n', "value": f'tls_server_config: "{quoted}"\n',
            "username": f'basic_auth_users:\n  "{quoted}": "not-a-hash"\n',
            "cert": f'tls_server_config:\n  cert_file: "{quoted}"\n  key_file: k\n',
            "yaml": text}[where]
    path = tmp_path / "web.yml"
    path.write_text(body, encoding="utf-8", errors="surrogatepass")
    stderr = io.StringIO()
    with _env(HUAWEICLOUD_SDK_AK="AK", HUAWEICLOUD_SDK_SK="SK", DLI_EXPORTER_REGION="cn-north-4",
              DLI_EXPORTER_PROJECT_IDS="p1", DLI_EXPORTER_WEB_CONFIG_FILE=str(path)), \
            contextlib.redirect_stderr(stderr), pytest.MonkeyPatch.context() as mp:
        mp.setattr(Exporter, "serve_forever", lambda self: None)
        code = cli.main(["--listen-address", "127.0.0.1:0"])
    output = stderr.getvalue()
    if code == 2:
        assert len(output.splitlines()) == 1 and clean(output.rstrip("\n")), repr(output)
        assert "DLI_EXPORTER_WEB_CONFIG_FILE" in output


# --- HTTP answers: /probe's refusals and every other 4xx ---

@pytest.fixture(scope="module")
def served() -> Iterator[Exporter]:
    with Simulator({"a" * 32: jobs(1)}) as sim, running_exporter(settings_for(sim, project_ids="")) as exporter:
        yield exporter


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["target", "region", "path", "method"]), HOSTILE)
@example("target", "a" * 31 + "\r")
@example("region", "cn-north-4\n")
def test_an_error_answer_is_one_line_and_echoes_nothing(served: Exporter, part: str, text: str) -> None:
    def ask(value: str) -> requests.Response:
        url, method, params = served.url + "/probe", "GET", {"target": "a" * 32}
        if part in ("target", "region"):
            params[part] = value
        elif part == "path":
            url = served.url + "/" + requests.utils.quote(value, safe="")
        else:
            method = "".join(c for c in value if c.isascii() and c.isalpha()).upper() or "X"
        return requests.request(method, url, params=params, timeout=10)

    resp = ask(text)
    if resp.status_code == 200:
        return  # a region, path or method that happens to be valid
    assert 400 <= resp.status_code < 500
    body = resp.text
    assert body.count("\n") == 1 and body.endswith("\n") and clean(body[:-1]), repr(body)
    # Nothing of the input in it: the answer is the one a plainly wrong value gets.
    neutral = ask("zz")
    assert (resp.status_code, body) == (neutral.status_code, neutral.text)


# --- --check, quoting an API error ---

@settings(max_examples=examples(25), deadline=None)
@given(HOSTILE)
@example("refused\r\nX-Injected: 1")
@example("\x1b]0;owned\x07")
def test_check_prints_an_api_error_on_one_clean_line(message: str) -> None:
    with Simulator({"a" * 32: jobs(1)}) as sim:
        sim.add_fault(Fault("error", status=400, error_code="DLI.0001", error_msg=message))
        out = io.StringIO()
        code = run_check(settings_for(sim, retries=0), out)
    lines = out.getvalue().splitlines()
    assert code == 1
    assert all(clean(line) for line in lines), lines
    errors = [line for line in lines if line.startswith("  error (")]
    assert [e.split(":")[0] for e in errors] == ["  error (jobs)", "  error (jobs detail)"], lines


def test_check_quotes_the_apis_code_and_request_id_escaped_too() -> None:
    """An error code and a request id (here from the body, as a gateway sends them without the
    header) reach --check as escaped as the message: one clean line each."""
    body = {"error_code": "APIG.\x1b[2J0301", "error_msg": "refused\r\n", "request_id": "rid\x07\nX: 1"}
    with answering(401, body) as gateway, Simulator({"a" * 32: []}) as sim:
        out = io.StringIO()
        code = run_check(settings_for(sim, endpoint=gateway), out)
    lines = out.getvalue().splitlines()
    assert code == 1 and all(clean(line) for line in lines), lines
    [error] = [line for line in lines if line.startswith("  error (jobs):")]
    assert "APIG.\\u001b[2J0301" in error and "(request_id=rid\\u0007\\nX: 1)" in error


def test_one_line_is_the_helper_and_keeps_printable_text_as_it_is() -> None:
    assert logs.one_line("plain text: é, 中文") == "plain text: é, 中文"
    assert logs.one_line("a\r\nb\x1b[2J\x07") == "a\\r\\nb\\u001b[2J\\u0007"


def test_an_api_message_is_quoted_cut_short() -> None:
    from exporter.dli.errors import MAX_ERROR_TEXT, MAX_ID_TEXT, Failure, Outcome

    text = str(Failure(Outcome.FATAL, "x" * 100_000, status=400, error_code="DLI.0001", request_id="r1"))
    assert text == f"HTTP 400 DLI.0001: {'x' * MAX_ERROR_TEXT}... (request_id=r1)"
    long_ids = str(Failure(Outcome.FATAL, "m", status=400, error_code="C" * 1000, request_id="r" * 1000))
    assert long_ids == f"HTTP 400 {'C' * MAX_ID_TEXT}...: m (request_id={'r' * MAX_ID_TEXT}...)"
