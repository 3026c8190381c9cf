"""The image as a cluster runs it: built from the Dockerfile with podman, run with the
Deployment's security context (read-only root, every capability dropped, no new privileges) on a
non-default port, healthy by its own HEALTHCHECK, as uid and gid 10001 with a named group; then
again behind TLS and basic auth from a mounted web config, still healthy.

The machine reaches only Debian, PyPI and npm, so the base image is a stand-in: Debian bookworm
from debootstrap (with python3, venv and pip), imported as ``python:3.11-slim`` and reused while
it exists. podman's settings come from tests/image/containers.conf. `make tools` installs
podman and what it needs; where it cannot be installed the test skips, except under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exporter import __version__
from tests.helpers import free_port
from tests.test_webconfig import PASSWORD, TLS, Pki, bcrypt_hash

ROOT = Path(__file__).resolve().parents[1]
BASE = "docker.io/library/python:3.11-slim"
IMAGE = "localhost/dli-exporter:test"
CONF = ROOT / "tests" / "image" / "containers.conf"
MIRROR = "http://deb.debian.org/debian"
STANDIN_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
# What the build needs of the machine to reach PyPI: its pip configuration and CA bundle.
BUILD_MOUNTS = [path for path in ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt") if Path(path).exists()]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(CONF)}
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the image test cannot run: {why} (make tools installs podman)")
    pytest.skip(f"the image test cannot run: {why} (make tools installs podman)")


def _standin() -> float:
    """Make the stand-in base image unless it exists; the seconds it took (0 when reused)."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return 0.0
    if shutil.which("debootstrap") is None:
        _unavailable("debootstrap is not installed")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dli-standin-") as root:
        made = subprocess.run(["debootstrap", "--variant=minbase", f"--include={STANDIN_PACKAGES}", "bookworm", root,
                               MIRROR], capture_output=True, text=True, timeout=900, check=False)
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["podman", "import", "--change", 'CMD ["python3"]', "-", BASE], stdin=tar.stdout,
                                  env={**os.environ, "CONTAINERS_CONF": str(CONF)}, capture_output=True, text=True,
                                  timeout=300, check=False)
        tar.wait(timeout=60)
        assert imported.returncode == 0, imported.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if shutil.which("podman") is None:
        _unavailable("podman is not installed")
    if os.geteuid() != 0:
        _unavailable("it runs as root (podman's storage and networking here)")
    standin = _standin()
    started = time.monotonic()
    mounts = [f"--volume={path}:{path}:ro" for path in BUILD_MOUNTS]
    podman("build", "--network=host", "--pull=never", "--format=docker", *mounts, "--tag", IMAGE, str(ROOT),
           timeout=900)
    built = time.monotonic() - started
    size = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Size"]
    print(f"\nimage: stand-in base {standin:.0f} s (0: reused), build {built:.1f} s, size {size / 1e6:.0f} MB")
    yield IMAGE


def run(image: str, port: int, *extra: str) -> str:
    """The container, as the Deployment runs it, on ``port``; its id."""
    return podman("run", "--detach", "--network=host", "--read-only", "--cap-drop=ALL",
                  "--security-opt=no-new-privileges", f"--env=DLI_EXPORTER_LISTEN_ADDRESS=127.0.0.1:{port}", *extra,
                  image, "--demo").stdout.strip()


def wait_healthy(container: str) -> subprocess.CompletedProcess[str]:
    """``podman healthcheck run`` until it passes (start-up), at most 30 s; the last result."""
    deadline = time.monotonic() + 30
    while True:
        result = podman("healthcheck", "run", container, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def stop(container: str) -> str:
    logs = podman("logs", container, check=False).stderr
    podman("rm", "--force", "--time=5", container, check=False)
    return logs


def test_the_image_carries_its_labels_group_and_healthcheck(image: str) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert config["User"] == "10001:10001"
    assert inspected["Healthcheck"]["Test"] == ["CMD", "dli-exporter", "healthcheck"]  # kept: --format docker


def test_runs_locked_down_on_another_port_healthy_as_10001(image: str) -> None:
    port = free_port()
    container = run(image, port)
    try:
        health = wait_healthy(container)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        ids = podman("exec", container, "id").stdout.strip()
        status = json.loads(podman("inspect", container).stdout)[0]["State"]
    finally:
        logs = stop(container)
    assert health.returncode == 0, health.stdout + health.stderr + logs
    assert 'dli_up{project_id="' in metrics and "dli_exporter_build_info" in metrics
    assert ids == "uid=10001(dli-exporter) gid=10001(dli-exporter) groups=10001(dli-exporter)", ids
    assert status["Running"] and "Traceback" not in logs


def test_runs_behind_tls_and_basic_auth_from_a_mounted_web_config_still_healthy(image: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dli-web-") as folder:
        pki = Pki(Path(folder))
        pki.write({"tls_server_config": TLS, "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}})
        Path(folder).chmod(0o755)  # readable by uid 10001 in the container
        for path in Path(folder).iterdir():
            path.chmod(0o644)
        port = free_port()
        container = run(image, port, f"--volume={folder}:/etc/dli-exporter:ro",
                        "--env=DLI_EXPORTER_WEB_CONFIG_FILE=/etc/dli-exporter/web.yml")
        try:
            health = wait_healthy(container)
            url = f"https://127.0.0.1:{port}/metrics"
            refused = requests.get(url, verify=pki.ca_file, timeout=10).status_code
            served = requests.get(url, verify=pki.ca_file, auth=("prometheus", PASSWORD), timeout=10)
        finally:
            logs = stop(container)
    assert health.returncode == 0, health.stdout + health.stderr + logs
    assert refused == 401 and served.status_code == 200 and "dli_up" in served.text
