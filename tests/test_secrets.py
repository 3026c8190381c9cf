"""Secrets never leave the process: not in logs (even at DEBUG), /metrics, exception texts or reprs.

Three runs cover every way a secret moves: AK/SK signing with temporary credentials (SK and
security token), IAM password login (password and the IAM token it yields, then a wrong
password), and start-up errors with every secret set. Everything the exporter says is collected
and searched for each secret.
"""

from __future__ import annotations

import io
import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from exporter.domain import Deadline
from exporter.environment import load_settings
from exporter.settings import ConfigError
from exporter.simulator import Simulator
from exporter.wiring import Exporter
from tests.helpers import COMMAND, captured_logs, clean_environ, jobs, running_exporter, settings_for

AK = "AKIDEXAMPLE0001"
SK = "sk-Very-Secret-0f3a9b"
SECURITY_TOKEN = "stok-Very-Secret-7c21e4"
PASSWORD = "pw-Very-Secret-51d0aa"
WRONG_PASSWORD = "pw-Wrong-Secret-98bc13"


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Everything logged, ours and the libraries' (urllib3 included), at DEBUG."""
    with captured_logs() as stream:
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
        yield stream


def said_by(exporter: Exporter) -> list[str]:
    """What a scrape shows and what the objects say of themselves."""
    out = []
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        resp = requests.get(exporter.url + "/metrics", headers={"Accept": accept}, timeout=20)
        assert resp.status_code == 200
        out.append(resp.text)
    out.append(requests.get(exporter.url + "/", timeout=20).text)
    api = exporter.api
    targets = exporter.settings.targets
    objects: list[Any] = [exporter.settings, api, api.transport, api.auth, api.reader, api.holdback, exporter.sweeper,
                          exporter.settings.auth_options, *exporter.sources, *targets,
                          *(api.auth.authorizer(t.project_id) for t in targets)]
    out.extend(repr(o) for o in objects)
    out.extend(str(o) for o in objects)
    out.append(repr(exporter.settings.model_dump()))
    out.append(exporter.settings.model_dump_json())
    results = exporter.sweeper.get(targets, Deadline.after(10)).results
    assert results
    for result in results.values():
        out.extend([repr(result), str(result.error)])
    return out


def assert_nowhere(secrets: list[str], texts: list[str]) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"a secret leaked into: {text[:200]!r}"


def test_aksk_with_temporary_credentials(debug_log: io.StringIO) -> None:
    with Simulator({"p1": jobs(150), "p2": jobs(3, start=500)}, credentials={AK: SK},
                   temporary={AK: SECURITY_TOKEN}) as sim:
        settings = settings_for(sim, ak=AK, sk=SK, security_token=SECURITY_TOKEN, show_detail=True)
        with running_exporter(settings) as exporter:
            texts = said_by(exporter)
            assert 'dli_up{project_id="p1"} 1.0' in texts[0]  # it did sign and sweep
            assert any("x-security-token" in r.headers for r in sim.recorded())
    texts.append(debug_log.getvalue())
    assert "level=debug" in texts[-1]  # DEBUG logging was on
    assert_nowhere([SK, SECURITY_TOKEN], texts)


def test_iam_login_a_new_token_and_a_wrong_password(debug_log: io.StringIO) -> None:
    users = {("acme", "monitor"): PASSWORD}
    with Simulator({"p1": jobs(150)}, credentials={}, iam_users=users) as sim:
        iam = {"ak": None, "sk": None, "iam_username": "monitor", "iam_domain": "acme", "iam_endpoint": sim.url}
        with running_exporter(settings_for(sim, iam_password=PASSWORD, **iam)) as exporter:
            texts = said_by(exporter)
            sim.expire_tokens()
            again = said_by(exporter)  # a 401, and a second login
            assert 'dli_up{project_id="p1"} 1.0' in again[0]
            texts += again
        tokens = list(sim.tokens)
        assert len(tokens) == 2
        with running_exporter(settings_for(sim, iam_password=WRONG_PASSWORD, **iam)) as exporter:
            failed = said_by(exporter)
            assert 'dli_up{project_id="p1"} 0.0' in failed[0]
            texts += failed
            # The login error as the client raises it, and the error the project reports.
            latest = exporter.sweeper.get(exporter.settings.targets, Deadline.after(10)).results
            errors = [r.error for r in latest.values()]
            assert any(e and "IAM login failed" in e for e in errors)
    texts.append(debug_log.getvalue())
    assert "IAM token rejected" in texts[-1] and "IAM login failed" in texts[-1]
    assert_nowhere([PASSWORD, WRONG_PASSWORD, *tokens], texts)


@pytest.mark.parametrize(("bad", "setting"), [
    ({"DLI_EXPORTER_REGION": "Not A Region"}, "DLI_EXPORTER_REGION"),
    ({"DLI_EXPORTER_IAM_DOMAIN": ""}, "DLI_EXPORTER_IAM_DOMAIN"),
    ({"DLI_EXPORTER_CACHE_SECONDS": SK}, "DLI_EXPORTER_CACHE_SECONDS"),  # a secret pasted in the wrong place
])
def test_config_errors(bad: dict[str, str], setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
           "DLI_EXPORTER_IAM_USERNAME": "monitor", "DLI_EXPORTER_IAM_PASSWORD": PASSWORD,
           "DLI_EXPORTER_IAM_DOMAIN": "acme", "DLI_EXPORTER_REGION": "cn-north-4",
           "DLI_EXPORTER_PROJECT_IDS": "p1", "DLI_EXPORTER_LOG_LEVEL": "debug", **bad}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    texts = [str(info.value), repr(info.value), info.value.problem]
    assert setting in texts[0]
    result = subprocess.run([COMMAND], env=clean_environ(env), capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 2 and setting in result.stderr
    texts += [result.stdout, result.stderr]
    assert_nowhere([SK, SECURITY_TOKEN, PASSWORD], texts)
