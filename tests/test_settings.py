"""Settings: names, defaults, derived values, validation and secrets."""

from __future__ import annotations

import pytest

from exporter.environment import env_name, load_settings, unknown_env_names
from exporter.listen import parse_listen_address
from exporter.settings import ConfigError, Settings

BASE = {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "the-secret-key",
        "DLI_EXPORTER_REGION": "cn-north-4", "DLI_EXPORTER_PROJECT_IDS": "p1"}


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch)
    assert s.targets[0].endpoint == "https://dli.cn-north-4.myhuaweicloud.com"
    assert s.listen_address == "0.0.0.0:9822"
    assert (s.cache_seconds, s.concurrency, s.retries) == (10.0, 8, 3)
    assert s.show_detail is True and s.detail_interval_seconds == 600 and s.per_job_metrics is True
    assert s.job_filters == {}
    assert s.auth_method == "aksk" and set(s.auth_options) == {"ak", "sk", "security_token"}


def test_project_ids_are_split_trimmed_and_deduplicated(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, DLI_EXPORTER_PROJECT_IDS=" a1, b2 ,,a1")
    assert s.effective_project_ids == ["a1", "b2"]


def test_sdk_variables_fill_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "sdkproj")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AK")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SK")
    s = load_settings()
    assert s.effective_project_ids == ["sdkproj"]
    assert s.targets[0].endpoint == "https://dli.ap-southeast-1.myhuaweicloud.com"


def test_endpoint_overrides_region_and_loses_its_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, DLI_EXPORTER_ENDPOINT="http://127.0.0.1:8080/")
    assert s.targets[0].endpoint == "http://127.0.0.1:8080"


def test_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, DLI_EXPORTER_QUEUE_NAME="q", DLI_EXPORTER_JOB_TYPE="flink_jar_job",
             DLI_EXPORTER_TAGS="team=a", DLI_EXPORTER_USER_NAME="bob", DLI_EXPORTER_JOB_NAME="orders",
             DLI_EXPORTER_STATUS="job_running")
    assert s.job_filters == {"queue_name": "q", "job_type": "flink_jar_job", "tags": "team=a",
                              "user_name": "bob", "name": "orders", "status": "job_running"}


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    s = load_settings({"cache_seconds": "0", "listen_address": "127.0.0.1:1"})
    assert s.cache_seconds == 0 and s.listen_address == "127.0.0.1:1"


def test_iam_login_needs_no_access_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DLI_EXPORTER_REGION", "DLI_EXPORTER_PROJECT_IDS"):
        monkeypatch.setenv(key, BASE[key])
    monkeypatch.setenv("DLI_EXPORTER_IAM_USERNAME", "u")
    monkeypatch.setenv("DLI_EXPORTER_IAM_PASSWORD", "pw-secret")
    monkeypatch.setenv("DLI_EXPORTER_IAM_DOMAIN", "d")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
    s = load_settings()
    assert s.auth_method == "iam_password" and "pw-secret" not in repr(s) and "pw-secret" not in str(s)
    assert s.auth_options["token_url"] == "https://iam.cn-north-4.myhuaweicloud.com/v3/auth/tokens"
    assert s.auth_options["password"].get_secret_value() == "pw-secret"


@pytest.mark.parametrize(("env", "setting"), [
    ({"DLI_EXPORTER_RETRIES": "-1"}, "DLI_EXPORTER_RETRIES"),
    ({"DLI_EXPORTER_CACHE_SECONDS": "nan"}, "DLI_EXPORTER_CACHE_SECONDS"),
    ({"DLI_EXPORTER_REQUEST_TIMEOUT_SECONDS": "0"}, "DLI_EXPORTER_REQUEST_TIMEOUT_SECONDS"),
    ({"DLI_EXPORTER_LOG_FORMAT": "xml"}, "DLI_EXPORTER_LOG_FORMAT"),
    ({"DLI_EXPORTER_PROJECT_IDS": "a/b"}, "DLI_EXPORTER_PROJECT_IDS"),
    ({"DLI_EXPORTER_PROBE_ALLOWED": "p1"}, "DLI_EXPORTER_PROBE_ALLOWED"),  # not a 32-hex project id
    ({"DLI_EXPORTER_LISTEN_ADDRESS": "host:99999"}, "DLI_EXPORTER_LISTEN_ADDRESS"),
    ({"DLI_EXPORTER_IAM_ENDPOINT": "iam"}, "DLI_EXPORTER_IAM_ENDPOINT"),
    ({"HUAWEICLOUD_SDK_SK": " "}, "HUAWEICLOUD_SDK_SK"),
])
def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, **env)
    assert info.value.setting == setting
    assert "the-secret-key" not in str(info.value)


def test_a_rejected_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI_EXPORTER_IAM_USERNAME", "u")
    monkeypatch.setenv("DLI_EXPORTER_IAM_PASSWORD", "pw-secret")
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_IAM_DOMAIN="")
    assert info.value.setting == "DLI_EXPORTER_IAM_DOMAIN" and "pw-secret" not in str(info.value)


def test_secrets_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, HUAWEICLOUD_SDK_SECURITY_TOKEN="tok-secret")
    assert "the-secret-key" not in repr(s) and "tok-secret" not in repr(s)


def test_env_names() -> None:
    assert env_name("sk") == "HUAWEICLOUD_SDK_SK"
    assert env_name("cache_seconds") == "DLI_EXPORTER_CACHE_SECONDS"
    assert env_name("name") == "DLI_EXPORTER_JOB_NAME"


def test_unknown_names() -> None:
    env = {"DLI_EXPORTER_REGION": "x", "DLI_EXPORTER_CACHE_SECOND": "1", "DLI_EXPORTER_NAME": "j", "HOME": "/"}
    assert unknown_env_names(env) == ["DLI_EXPORTER_CACHE_SECOND"]


@pytest.mark.parametrize(("text", "expected"), [
    ("0.0.0.0:9822", ("0.0.0.0", 9822)), (":9822", ("0.0.0.0", 9822)), ("[::]:9822", ("::", 9822)),
    ("localhost:1", ("localhost", 1)),
])
def test_listen_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


def test_the_readme_documents_every_variable() -> None:
    from pathlib import Path

    from exporter.environment import known_env_names

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = sorted(name for name in known_env_names() if f"`{name}`" not in readme)
    assert not missing


def test_regions_outside_the_sdks_table_need_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    eu = load(monkeypatch, DLI_EXPORTER_REGION="eu-west-101")
    assert eu.targets[0].endpoint == "https://dli.eu-west-101.myhuaweicloud.eu"
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_REGION="xx-nowhere-1")
    assert str(info.value) == ("DLI_EXPORTER_REGION: xx-nowhere-1 is not in the SDK's region table; "
                               "set DLI_EXPORTER_ENDPOINT for it")
    private = load(monkeypatch, DLI_EXPORTER_REGION="xx-nowhere-1", DLI_EXPORTER_ENDPOINT="https://dli.internal")
    assert private.targets[0].endpoint == "https://dli.internal"
    with pytest.raises(ConfigError) as iam:
        load(monkeypatch, DLI_EXPORTER_REGION="xx-nowhere-1", DLI_EXPORTER_ENDPOINT="https://dli.internal",
             DLI_EXPORTER_IAM_USERNAME="u", DLI_EXPORTER_IAM_PASSWORD="p", DLI_EXPORTER_IAM_DOMAIN="d")
    assert iam.value.setting == "DLI_EXPORTER_REGION" and "DLI_EXPORTER_IAM_ENDPOINT" in iam.value.problem
    iam_eu = load(monkeypatch, DLI_EXPORTER_REGION="eu-west-101", DLI_EXPORTER_IAM_USERNAME="u",
                  DLI_EXPORTER_IAM_PASSWORD="p", DLI_EXPORTER_IAM_DOMAIN="d")
    assert iam_eu.auth_options["token_url"] == "https://iam.eu-west-101.myhuaweicloud.eu/v3/auth/tokens"


def test_edge_jobs_are_a_valid_filter_and_the_detail_cadence_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, DLI_EXPORTER_JOB_TYPE="flink_sql_edge_job").job_filters == {
        "job_type": "flink_sql_edge_job"}
    assert load(monkeypatch, DLI_EXPORTER_DETAIL_INTERVAL_SECONDS="0").detail_interval_seconds == 0
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_DETAIL_INTERVAL_SECONDS="-1")
    assert info.value.setting == "DLI_EXPORTER_DETAIL_INTERVAL_SECONDS"
    summary_only = load(monkeypatch, DLI_EXPORTER_SHOW_DETAIL="false", DLI_EXPORTER_DETAIL_INTERVAL_SECONDS="600")
    assert summary_only.show_detail is False


def test_projects_in_several_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, DLI_EXPORTER_PROJECT_IDS="p1, ap-southeast-1:p2, eu-west-101:p3")
    assert [(t.project_id, t.region, t.endpoint) for t in s.targets] == [
        ("p1", "cn-north-4", "https://dli.cn-north-4.myhuaweicloud.com"),
        ("p2", "ap-southeast-1", "https://dli.ap-southeast-1.myhuaweicloud.com"),
        ("p3", "eu-west-101", "https://dli.eu-west-101.myhuaweicloud.eu")]
    # Every project named with its region: no default region needed (an empty value is unset).
    assert [t.region for t in load(monkeypatch, DLI_EXPORTER_REGION="",
                                   DLI_EXPORTER_PROJECT_IDS="cn-north-4:p1,af-south-1:p2").targets] == [
        "cn-north-4", "af-south-1"]
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_REGION="", DLI_EXPORTER_PROJECT_IDS="cn-north-4:p1,p2")
    assert info.value.setting == "DLI_EXPORTER_REGION"
    with pytest.raises(ConfigError) as unknown:
        load(monkeypatch, DLI_EXPORTER_PROJECT_IDS="xx-nowhere-1:p1")
    assert str(unknown.value) == ("DLI_EXPORTER_PROJECT_IDS: xx-nowhere-1 is not in the SDK's region table; "
                                  "set DLI_EXPORTER_ENDPOINT for it")
    with pytest.raises(ConfigError):
        load(monkeypatch, DLI_EXPORTER_PROJECT_IDS="cn-north-4:p1:extra")


def test_an_endpoint_may_hold_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, DLI_EXPORTER_ENDPOINT="https://dli.{region}.internal:8443/",
             DLI_EXPORTER_PROJECT_IDS="p1,xx-private-1:p2")
    assert [(t.region, t.endpoint) for t in s.targets] == [("cn-north-4", "https://dli.cn-north-4.internal:8443"),
                                                          ("xx-private-1", "https://dli.xx-private-1.internal:8443")]
    plain = load(monkeypatch, DLI_EXPORTER_ENDPOINT="http://127.0.0.1:8080", DLI_EXPORTER_PROJECT_IDS="p1")
    assert plain.targets[0].endpoint == "http://127.0.0.1:8080"
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_REGION="", DLI_EXPORTER_ENDPOINT="https://dli.{region}.internal",
             DLI_EXPORTER_PROJECT_IDS="p1")
    assert info.value.setting == "DLI_EXPORTER_REGION" and "{region}" in info.value.problem


def test_each_switched_resource_has_its_two_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource's switch gives it an on/off setting and an interval, named as the contract says,
    with no line of their own in the settings."""
    from exporter.environment import known_env_names
    from exporter.resources import REGISTERED

    queues = next(r for r in REGISTERED if r.name == "queues")
    default = load(monkeypatch)
    assert default.reads(queues) and default.intervals() == {"queues": 300.0}
    assert default.resource_options().interval("queues", 0) == 300.0
    off = load(monkeypatch, DLI_EXPORTER_QUEUES="false", DLI_EXPORTER_QUEUE_INTERVAL_SECONDS="0")
    assert not off.reads(queues) and off.intervals() == {"queues": 0.0}
    assert {"DLI_EXPORTER_QUEUES", "DLI_EXPORTER_QUEUE_INTERVAL_SECONDS"} <= known_env_names()
    for bad in ("-1", "soon", "86401"):
        with pytest.raises(ConfigError) as info:
            load(monkeypatch, DLI_EXPORTER_QUEUE_INTERVAL_SECONDS=bad)
        assert info.value.setting == "DLI_EXPORTER_QUEUE_INTERVAL_SECONDS"
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, DLI_EXPORTER_QUEUES="perhaps")
    assert info.value.setting == "DLI_EXPORTER_QUEUES"
