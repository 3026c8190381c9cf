"""Shared fixtures: a clean environment, the simulator on loopback, and a running exporter."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from exporter import render
from exporter.simulator import Simulator
from exporter.wiring import Exporter
from tests.helpers import FUZZING, jobs, running_exporter, settings_for

# `make test` replays the same examples on every run and every machine (derandomized, and no
# example database carried between runs), so its verdict never depends on luck: the README's
# command gives a newcomer the answer CI gives. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) explores
# fresh random examples, ten times as many, and prints how to reproduce a failure; what it finds
# becomes an @example of the test.
settings.register_profile("replay", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, database=None, print_blob=True)
settings.load_profile("fuzz" if FUZZING else "replay")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(autouse=True)
def fresh_renderers() -> None:
    """Each test generates the renderer's functions anew: a cache filled by an earlier test (or by
    make mutate's first run, which the mutants fork from) would hide a change in the generator."""
    render._record_renderer.cache_clear()
    render._line_function.cache_clear()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see none of the developer's real credentials or settings."""
    for key in list(os.environ):
        if key.startswith(("HUAWEICLOUD_", "DLI_EXPORTER_")):
            monkeypatch.delenv(key)


LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""}  # names looked up, not bindings


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real host: a name lookup of anything but loopback fails at once (a test
    that forgot to point IAM or DLI at the simulator fails, instead of calling the cloud)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulator with two small projects, no evolution, on 127.0.0.1."""
    simulator = Simulator({"p1": jobs(3), "p2": jobs(2, start=101)}).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def exporter_for() -> Iterator[Callable[..., Exporter]]:
    """Start an exporter against a simulator; every one started is stopped at the end."""
    stack: list[Any] = []

    def start(sim: Simulator, **overrides: Any) -> Exporter:
        ctx = running_exporter(settings_for(sim, **overrides))
        stack.append(ctx)
        return ctx.__enter__()

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: .ci/run installs it (make tools)")
        pytest.skip(f"{name} not installed (run `make tools`)")
    return path


@pytest.fixture
def promtool() -> Callable[[bytes], subprocess.CompletedProcess[bytes]]:
    """`promtool check metrics` on an exposition; returns the finished process."""
    path = _tool("promtool")

    def check(exposition: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([path, "check", "metrics"], input=exposition, capture_output=True, timeout=30,
                              check=False)

    return check
