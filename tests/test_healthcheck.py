"""``dli-exporter healthcheck`` as a container runs it: the console script with the server's
environment, against the real server on a non-default port, plain and with TLS and basic auth,
beside the demo (no credentials), and failing with one line when nothing answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.helpers import COMMAND, clean_environ, free_port
from tests.test_webconfig import PASSWORD, TLS, Pki, bcrypt_hash


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, "healthcheck", *args], env=clean_environ(env), capture_output=True, text=True,
                          timeout=30, check=False)


@contextmanager
def demo(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The demo, as the image's test runs it: settings from the environment, no credentials."""
    proc = subprocess.Popen([COMMAND, "--demo"], env=clean_environ(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while healthcheck(env).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_healthy_on_a_non_default_port_beside_the_demo() -> None:
    env = {"DLI_EXPORTER_LISTEN_ADDRESS": f"0.0.0.0:{free_port()}"}
    with demo(env):
        result = healthcheck(env)
    assert result.returncode == 0 and result.stderr == ""


def test_healthy_with_tls_and_basic_auth(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    config = pki.write({"tls_server_config": TLS, "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}})
    port = free_port()
    env = {"DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "DLI_EXPORTER_WEB_CONFIG_FILE": config}
    with demo(env):
        result = healthcheck(env)
        # The server really is behind TLS and basic auth: plain HTTP and no password are refused.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert requests.get(f"https://127.0.0.1:{port}/metrics", verify=pki.ca_file, timeout=5).status_code == 401
        plain = healthcheck({"DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"})  # without the web config
    assert result.returncode == 0 and result.stderr == ""
    assert plain.returncode == 1 and len(plain.stderr.splitlines()) == 1


def test_flags_name_the_server_as_the_environment_does() -> None:
    port = free_port()
    with demo({"DLI_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"}):
        result = healthcheck({}, "--listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 0


def test_nothing_listening_is_one_line_and_exit_1() -> None:
    port = free_port()
    result = healthcheck({"DLI_EXPORTER_LISTEN_ADDRESS": f":{port}"})
    assert result.returncode == 1
    where = f"http://127.0.0.1:{port}/healthz"
    assert result.stderr == f"dli-exporter healthcheck: {where}: [Errno 111] Connection refused\n"


@pytest.mark.parametrize(("env", "named"), [
    ({"DLI_EXPORTER_LISTEN_ADDRESS": "no-port"}, "DLI_EXPORTER_LISTEN_ADDRESS"),
    ({"DLI_EXPORTER_WEB_CONFIG_FILE": "/nonexistent/web.yml"}, "DLI_EXPORTER_WEB_CONFIG_FILE"),
    ({"DLI_EXPORTER_WEB_CONFIG_FILE": "/nonexistent/\x1b[2Jweb\r.yml"}, "DLI_EXPORTER_WEB_CONFIG_FILE"),
])
def test_a_bad_setting_is_one_line_and_exit_2(env: dict[str, str], named: str) -> None:
    result = healthcheck(env)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr and result.stderr[:-1].isprintable() and "Traceback" not in result.stderr
