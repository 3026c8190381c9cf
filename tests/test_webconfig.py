"""Protecting /metrics with a web configuration file (the exporter toolkit's format), over real
TLS on loopback: a certificate authority and certificates made for each test run (trustme)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter.simulator import Simulator
from exporter.web.config import WebConfigError, load_web_config, parse_duration
from exporter.web.guard import Passwords
from exporter.wiring import Exporter
from tests.helpers import COMMAND, clean_environ, free_port, jobs

Start = Callable[..., Exporter]
PASSWORD = "correct horse battery staple"


def bcrypt_hash(password: str, prefix: bytes = b"$2b$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4))  # cost 4: fast tests, same algorithm
    return (prefix + hashed[4:]).decode()


class Pki:
    """A CA, the server's certificate for 127.0.0.1, and two client certificates, as files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = trustme.CA()
        self.ca.cert_pem.write_to_path(str(root / "ca.pem"))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        server.cert_chain_pems[0].write_to_path(str(root / "server.crt"))
        server.private_key_pem.write_to_path(str(root / "server.key"))
        for name in ("prometheus.monitoring", "intruder.example"):
            client = self.ca.issue_cert(name)
            client.private_key_and_cert_chain_pem.write_to_path(str(root / f"{name}.pem"))
        self.ca_file = str(root / "ca.pem")

    def client(self, name: str) -> str:
        return str(self.root / f"{name}.pem")

    def write(self, config: dict[str, Any], name: str = "web.yml") -> str:
        path = self.root / name
        path.write_text(yaml.safe_dump(config))
        return str(path)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator({"p1": jobs(3)}) as simulator:
        yield simulator


TLS = {"cert_file": "server.crt", "key_file": "server.key"}  # relative to the file, as in the toolkit


def get(exporter: Exporter, path: str, pki: Pki, **kwargs: Any) -> requests.Response:
    return requests.get(exporter.url + path, verify=pki.ca_file, timeout=10, **kwargs)


def test_tls_serves_metrics_and_refuses_plain_http(sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    exporter = exporter_for(sim, web_config_file=pki.write({"tls_server_config": TLS}))
    assert exporter.url.startswith("https://127.0.0.1:")
    resp = get(exporter, "/metrics", pki)
    assert resp.status_code == 200 and 'dli_up{project_id="p1"} 1.0' in resp.text
    with pytest.raises(requests.exceptions.SSLError):  # our CA is the only one that can vouch for it
        requests.get(exporter.url + "/metrics", timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.get(exporter.url.replace("https://", "http://") + "/metrics", timeout=10)
    assert get(exporter, "/metrics", pki).status_code == 200  # a bad client does not break the server


def test_tls_versions(sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    exporter = exporter_for(sim, web_config_file=pki.write({"tls_server_config": {**TLS, "min_version": "TLS13"}}))
    context = ssl.create_default_context(cafile=pki.ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as raw, \
            pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        assert conn.version() == "TLSv1.3"


@pytest.mark.parametrize("prefix", [b"$2b$", b"$2y$", b"$2a$"])  # htpasswd writes $2y$
def test_basic_auth(sim: Simulator, exporter_for: Start, pki: Pki, prefix: bytes) -> None:
    config = {"tls_server_config": TLS, "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD, prefix),
                                                             "grafana": bcrypt_hash("other password")}}
    exporter = exporter_for(sim, web_config_file=pki.write(config))
    missing = get(exporter, "/metrics", pki)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Basic ")
    assert "dli_up" not in missing.text
    assert get(exporter, "/metrics", pki, auth=("prometheus", "wrong")).status_code == 401
    assert get(exporter, "/metrics", pki, auth=("prometheus", "other password")).status_code == 401  # not hers
    assert get(exporter, "/metrics", pki, auth=("nobody", PASSWORD)).status_code == 401
    assert get(exporter, "/metrics", pki, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert get(exporter, "/metrics", pki, headers={"Authorization": "Bearer x"}).status_code == 401
    assert get(exporter, "/", pki).status_code == 401
    right = get(exporter, "/metrics", pki, auth=("prometheus", PASSWORD))
    assert right.status_code == 200 and "dli_up" in right.text
    assert get(exporter, "/metrics", pki, auth=("prometheus", PASSWORD)).status_code == 200  # cached check
    assert get(exporter, "/healthz", pki).status_code == 200  # probes need no password


def test_basic_auth_splits_user_and_password_at_the_first_colon(sim: Simulator, exporter_for: Start,
                                                                pki: Pki) -> None:
    """RFC 7617: a user name holds no colon, a password may. Split at any later colon, the user
    would be "prometheus:pa..." and the right password would be refused."""
    password = "pa:ss:word:"
    users = {"prometheus": bcrypt_hash(password)}
    exporter = exporter_for(sim, web_config_file=pki.write({"basic_auth_users": users}))
    metrics = exporter.url + "/metrics"
    assert requests.get(metrics, auth=("prometheus", password), timeout=10).status_code == 200
    assert requests.get(metrics, auth=("prometheus", "pa"), timeout=10).status_code == 401
    assert requests.get(metrics, auth=("prometheus", "pa:ss:word"), timeout=10).status_code == 401


def test_basic_auth_without_tls(sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    exporter = exporter_for(sim, web_config_file=pki.write({"basic_auth_users": {"p": bcrypt_hash(PASSWORD)}}))
    assert exporter.url.startswith("http://")
    assert requests.get(exporter.url + "/metrics", timeout=10).status_code == 401
    assert requests.get(exporter.url + "/metrics", auth=("p", PASSWORD), timeout=10).status_code == 200
    assert requests.get(exporter.url + "/healthz", timeout=10).status_code == 200


def test_require_and_verify_refuses_a_client_without_a_certificate(sim: Simulator, exporter_for: Start,
                                                                   pki: Pki) -> None:
    """With no SAN list to check, the TLS handshake alone must refuse a client that has no
    certificate (and admit one our CA issued)."""
    tls = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem"}
    exporter = exporter_for(sim, web_config_file=pki.write({"tls_server_config": tls}))
    with pytest.raises(requests.ConnectionError):
        get(exporter, "/metrics", pki)
    ok = get(exporter, "/metrics", pki, cert=pki.client("intruder.example"))  # any certificate of our CA
    assert ok.status_code == 200 and "dli_up" in ok.text


def test_client_certificates(sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    tls = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem",
           "client_allowed_sans": ["prometheus.monitoring"]}
    exporter = exporter_for(sim, web_config_file=pki.write({"tls_server_config": tls}))
    ok = get(exporter, "/metrics", pki, cert=pki.client("prometheus.monitoring"))
    assert ok.status_code == 200 and "dli_up" in ok.text
    with pytest.raises(requests.ConnectionError):  # no certificate
        get(exporter, "/metrics", pki)
    with pytest.raises(requests.ConnectionError):  # signed by our CA, but not an allowed name
        get(exporter, "/metrics", pki, cert=pki.client("intruder.example"))
    stranger = trustme.CA().issue_cert("prometheus.monitoring")
    path = pki.root / "stranger.pem"
    stranger.private_key_and_cert_chain_pem.write_to_path(str(path))
    with pytest.raises(requests.ConnectionError):  # the right name from another CA
        get(exporter, "/metrics", pki, cert=str(path))


def test_headers_and_rate_limit(sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    config = {"http_server_config": {"headers": {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}},
              "rate_limit": {"interval": "1m", "burst": 2}}
    exporter = exporter_for(sim, web_config_file=pki.write(config))
    answers = [requests.get(exporter.url + "/metrics", timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert all(a.headers.get("X-Frame-Options") == "deny" for a in answers)
    assert requests.get(exporter.url + "/healthz", timeout=10).status_code == 200  # never limited


def test_a_changed_file_applies_without_a_restart_and_a_broken_one_is_ignored(
        sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    path = pki.write({"basic_auth_users": {"p": bcrypt_hash("first")}})
    exporter = exporter_for(sim, web_config_file=path)
    url = exporter.url + "/metrics"
    assert requests.get(url, auth=("p", "first"), timeout=10).status_code == 200
    Path(path).write_text(yaml.safe_dump({"basic_auth_users": {"p": bcrypt_hash("second password")}}))
    os.utime(path, (time.time() + 5, time.time() + 5))
    time.sleep(1.1)  # the file is looked at no more than once a second
    assert requests.get(url, auth=("p", "first"), timeout=10).status_code == 401
    reloaded = requests.get(url, auth=("p", "second password"), timeout=10)
    assert reloaded.status_code == 200
    assert "\ndli_exporter_web_config_last_reload_successful 1.0\n" in reloaded.text
    Path(path).write_text("basic_auth_users: [not, a, mapping")
    os.utime(path, (time.time() + 10, time.time() + 10))
    time.sleep(1.1)
    kept = requests.get(url, auth=("p", "second password"), timeout=10)
    assert kept.status_code == 200
    assert "\ndli_exporter_web_config_last_reload_successful 0.0\n" in kept.text  # the failure shows


def test_an_unknown_user_is_refused_even_with_the_dummy_password() -> None:
    """Unknown users are checked against a dummy hash (same work, same answer); its password must
    not let them in."""
    passwords = Passwords()
    users = {"p": bcrypt_hash(PASSWORD).encode()}
    assert passwords.verify(users, "nobody", Passwords.DUMMY_PASSWORD) is False
    assert passwords.verify({}, "nobody", Passwords.DUMMY_PASSWORD) is False
    assert passwords.verify(users, "p", Passwords.DUMMY_PASSWORD) is False
    assert passwords.verify(users, "p", PASSWORD) is True


def test_tls_is_at_least_1_2_unless_the_file_says_otherwise(pki: Pki) -> None:
    context = load_web_config(pki.write({"tls_server_config": TLS})).tls
    assert context is not None
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    strict = load_web_config(pki.write({"tls_server_config": {**TLS, "min_version": "TLS13"}})).tls
    assert strict is not None and strict.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(("config", "message"), [
    ("tls_server_config: {cert_file: server.crt", "not valid YAML at line 1"),
    ({"tls_config": TLS}, "unknown field 'tls_config' in the file"),
    ({"tls_server_config": {**TLS, "client_auth": "x"}}, "unknown field 'client_auth'"),
    ({"tls_server_config": {"key_file": "server.key"}}, "cert_file (or cert) is required"),
    ({"tls_server_config": {"cert_file": "server.crt"}}, "key_file (or key) is required"),
    ({"tls_server_config": {**TLS, "cert_file": "missing.crt"}}, "cert_file: missing.crt does not exist"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "ca.pem"}}, "cannot be loaded"),
    ({"tls_server_config": {**TLS, "min_version": "TLS14"}}, "min_version: 'TLS14' is not one of"),
    ({"tls_server_config": {**TLS, "min_version": "TLS13", "max_version": "TLS12"}}, "min_version is above"),
    ({"tls_server_config": {**TLS, "client_ca_file": "ca.pem"}}, "client_auth_type is NoClientCert"),
    ({"tls_server_config": {**TLS, "client_auth_type": "RequireAndVerifyClientCert"}}, "needs client_ca_file"),
    ({"tls_server_config": {**TLS, "client_auth_type": "RequireAnyClientCert", "client_ca_file": "ca.pem"}},
     "without verifying them"),
    ({"tls_server_config": {**TLS, "client_auth_type": "Sometimes"}}, "'Sometimes' is not one of"),
    ({"tls_server_config": {**TLS, "client_allowed_sans": ["a"]}}, "client_allowed_sans needs"),
    ({"tls_server_config": {**TLS, "cipher_suites": ["TLS_NULL"]}}, "unknown cipher suite 'TLS_NULL'"),
    ({"basic_auth_users": {"p": "plain-text-password"}}, "basic_auth_users.p is not a bcrypt hash"),
    ({"basic_auth_users": ["p"]}, "basic_auth_users must be a mapping"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "'Server' is not one of"),
    ({"rate_limit": {"interval": "soon", "burst": 1}}, "not a duration"),
    ({"rate_limit": {"interval": "1s"}}, "burst must be at least 1"),
])
def test_bad_files_are_refused_naming_the_field(pki: Pki, config: Any, message: str) -> None:
    if isinstance(config, str):
        path = pki.root / "web.yml"
        path.write_text(config)
    else:
        path = Path(pki.write(config))
    with pytest.raises(WebConfigError) as info:
        load_web_config(str(path))
    assert message in str(info.value)
    assert "plain-text-password" not in str(info.value)


def test_good_files(pki: Pki) -> None:
    assert load_web_config(pki.write({})).tls is None  # an empty file: plain HTTP, no auth, as in the toolkit
    inline = {"cert": (pki.root / "server.crt").read_text(), "key": (pki.root / "server.key").read_text(),
              "client_ca": (pki.root / "ca.pem").read_text(), "client_auth_type": "VerifyClientCertIfGiven",
              "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "prefer_server_cipher_suites": False,
              "curve_preferences": ["X25519"]}
    config = load_web_config(pki.write({"tls_server_config": inline, "http_server_config": {"http2": False}}))
    assert config.tls is not None and config.tls.verify_mode == ssl.CERT_OPTIONAL
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("dli-exporter-*.pem"))  # inline PEMs cleaned up
    hashed = bcrypt_hash(PASSWORD)
    assert hashed not in repr(load_web_config(pki.write({"basic_auth_users": {"p": hashed}})))


def test_durations() -> None:
    assert parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    with pytest.raises(WebConfigError):
        parse_duration("1 minute")


def test_a_bad_file_stops_start_up_with_exit_2_naming_the_setting(pki: Pki) -> None:
    path = pki.write({"basic_auth_users": {"p": "hunter2"}})
    env = clean_environ({"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK", "DLI_EXPORTER_REGION": "cn-north-4",
                         "DLI_EXPORTER_PROJECT_IDS": "p1", "DLI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1:0"})
    for args, extra in (([], {"DLI_EXPORTER_WEB_CONFIG_FILE": path}), (["--web.config.file", path], {}),
                        (["--web.config.file", str(pki.root / "absent.yml")], {})):
        result = subprocess.run([COMMAND, *args], env={**env, **extra}, capture_output=True, text=True, timeout=20,
                                check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dli-exporter: invalid setting DLI_EXPORTER_WEB_CONFIG_FILE: ")
        assert "hunter2" not in result.stderr


@pytest.mark.e2e
def test_the_real_prometheus_scrapes_through_tls_client_certificates_and_basic_auth(
        sim: Simulator, exporter_for: Start, pki: Pki) -> None:
    """Go's TLS client and Prometheus' own scrape config against our server: the pairing operators run."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed: make tools installs it")
        pytest.skip("prometheus not installed (make tools)")
    tls = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem",
           "client_allowed_sans": ["prometheus.monitoring"]}
    config = {"tls_server_config": tls, "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD, b"$2y$")}}
    exporter = exporter_for(sim, web_config_file=pki.write(config))
    client = pki.ca.issue_cert("prometheus.monitoring")
    client.cert_chain_pems[0].write_to_path(str(pki.root / "prom.crt"))
    client.private_key_pem.write_to_path(str(pki.root / "prom.key"))
    (pki.root / "password").write_text(PASSWORD)
    scrape = {"job_name": "dli-exporter", "scheme": "https", "scrape_interval": "1s", "scrape_timeout": "1s",
              "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
              "tls_config": {"ca_file": "ca.pem", "cert_file": "prom.crt", "key_file": "prom.key"},
              "basic_auth": {"username": "prometheus", "password_file": "password"}}
    (pki.root / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [scrape]}))
    port = free_port()
    log = open(pki.root / "prometheus.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([prometheus, "--config.file=prometheus.yml", f"--storage.tsdb.path={pki.root / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], cwd=pki.root, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            time.sleep(0.5)
            with contextlib.suppress(requests.ConnectionError):
                answer = requests.get(f"http://127.0.0.1:{port}/api/v1/query", timeout=5,
                                      params={"query": 'dli_up{job="dli-exporter",project_id="p1"} == 1'}).json()
                result = answer.get("data", {}).get("result", [])
        targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()
        assert result, targets
        [target] = targets["data"]["activeTargets"]
        assert target["health"] == "up" and target["scrapeUrl"].startswith("https://")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_a_self_signed_certificate(sim: Simulator, exporter_for: Start, tmp_path: Path) -> None:
    """The simplest set-up an operator makes with openssl req -x509: the certificate is its own issuer."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dli-exporter")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "self.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "self.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    config = tmp_path / "web.yml"
    config.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": "self.crt", "key_file": "self.key"},
                                      "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}}))
    exporter = exporter_for(sim, web_config_file=str(config))
    verify = str(tmp_path / "self.crt")
    resp = requests.get(exporter.url + "/metrics", verify=verify, auth=("prometheus", PASSWORD), timeout=10)
    assert resp.status_code == 200 and "dli_up" in resp.text
    assert requests.get(exporter.url + "/metrics", verify=verify, auth=("prometheus", "nope"),
                        timeout=10).status_code == 401
    assert requests.get(exporter.url + "/healthz", verify=verify, timeout=10).status_code == 200
