"""Discovery: every project of the account from the key alone, which of them are read and why
not the others; the look-up's cadence, failures and 403s; the simulator's IAM over HTTP."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from pydantic import SecretStr

from exporter.discovery import RETRY_FAILED, Discovery, region_of
from exporter.dli import iam, schema
from exporter.dli.auth import AccessKey
from exporter.dli.errors import Failure, Outcome
from exporter.domain import DISCOVERED, PROBED, Deadline, FoundProject, Result, Target
from exporter.regions import NoEndpoint
from exporter.simulator import DEMO_AK, DEMO_SK, Account, Fault, Simulator, project
from tests.helpers import captured_logs, jobs, running_exporter, scrape, settings_for

SERVED = ("cn-north-4", "ap-southeast-1", "la-south-2")
FAR = Deadline(time.monotonic() + 3600, 10.0)  # far off, and still a time a thread can wait for


def place(project_id: str, region: str) -> Target:
    if region == "la-south-2" and project_id == "noendpoint":
        raise NoEndpoint("la-south-2 has no endpoint here")
    return Target(project_id, f"http://dli/{region}", region)


class Iam:
    """IAM's answers, in order (a list of projects or a failure), and the readability of each project."""

    def __init__(self, *answers: list[FoundProject] | Failure, refused: set[str] | None = None) -> None:
        self.answers = list(answers)
        self.refused = set(refused or ())
        self.lookups = 0
        self.checked: list[str] = []

    def lookup(self, deadline: Deadline) -> list[FoundProject] | Failure:
        self.lookups += 1
        return self.answers[min(self.lookups, len(self.answers)) - 1]

    def check(self, target: Target, deadline: Deadline) -> Result:
        self.checked.append(target.project_id)
        if target.project_id in self.refused:
            return Result.down("permission denied: HTTP 403", 0.1, 1.0, denied=True)
        return Result([], None, 0.1, 1.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def discovery(fake: Iam, clock: Clock | None = None, *, configured: tuple[Target, ...] = (),
              regions: tuple[str, ...] = (), interval: float = 600.0) -> Discovery:
    return Discovery(configured, enabled=True, lookup=fake.lookup, check=fake.check, place=place, served=SERVED,
                     regions=regions, interval=interval, clock=clock or Clock(), wall=lambda: 1_800_000_000.0)


def found(*names: str, disabled: tuple[str, ...] = ()) -> list[FoundProject]:
    return [FoundProject(f"id-{name}", name, name not in disabled) for name in names]


def ids(targets: tuple[Target, ...]) -> list[str]:
    return [t.project_id for t in targets]


@pytest.mark.parametrize(("name", "region"), [
    ("cn-north-4", "cn-north-4"), ("cn-north-4_analytics", "cn-north-4"), ("cn-north-4_a_b", "cn-north-4"),
    ("MOS", None), ("", None), ("cn_north", None), ("my-kualalumpur-1", "my-kualalumpur-1"),
])
def test_a_projects_name_places_it_in_a_region(name: str, region: str | None) -> None:
    assert region_of(name) == region


def test_what_is_read_and_why_the_others_are_not() -> None:
    fake = Iam([*found("cn-north-4", "cn-north-4_analytics", "ap-southeast-1", "MOS", "cn-north-7",
                       "la-south-2", disabled=("ap-southeast-1",)),
                FoundProject("noendpoint", "la-south-2_x", True), FoundProject("domain", "cn-north-4", True, True)],
               refused={"id-la-south-2"})
    with captured_logs() as log:
        found_by = discovery(fake)
        targets = found_by.targets(FAR)
    assert ids(targets) == ["id-cn-north-4", "id-cn-north-4_analytics"]
    assert [(t.name, t.region, t.source) for t in targets] == [
        ("cn-north-4", "cn-north-4", DISCOVERED), ("cn-north-4_analytics", "cn-north-4", DISCOVERED)]
    report = found_by.report()
    assert ids(report.unreadable) == ["id-la-south-2"]
    assert {item.name: item.reason for item in report.left_out} == {
        "ap-southeast-1": "disabled", "MOS": "not a region's project", "cn-north-7": "DLI is not offered in cn-north-7",
        "la-south-2_x": "la-south-2 has no endpoint here", "cn-north-4": "the account itself, not a project"}
    text = log.getvalue()
    assert text.count("DLI is not offered in cn-north-7") == 1 and "project_name=cn-north-7" in text
    assert "refused (403)" in text and "project_id=id-la-south-2" in text
    assert sorted(fake.checked) == ["id-cn-north-4", "id-cn-north-4_analytics", "id-la-south-2"]


def test_regions_limit_where_it_looks_and_configured_projects_are_read_once() -> None:
    fake = Iam(found("cn-north-4", "ap-southeast-1", "la-south-2"))
    configured = (Target("id-ap-southeast-1", "http://configured", "ap-southeast-1"),)
    got = discovery(fake, configured=configured, regions=("cn-north-4", "ap-southeast-1")).targets(FAR)
    assert ids(got) == ["id-ap-southeast-1", "id-cn-north-4"]
    assert got[0].endpoint == "http://configured" and got[0].source == "configured"


def test_the_list_is_looked_up_again_each_interval_in_the_background() -> None:
    clock = Clock()
    fake = Iam(found("cn-north-4"), found("cn-north-4", "ap-southeast-1"), found("ap-southeast-1"))
    changes: list[list[str]] = []
    found_by = Discovery((), enabled=True, lookup=fake.lookup, check=fake.check, place=place, served=SERVED,
                         interval=600.0, clock=clock, on_change=lambda targets: changes.append(ids(targets)))
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4"]
    clock.now = 599.0
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4"] and fake.lookups == 1  # not due yet
    clock.now = 600.0
    first = found_by.targets(FAR)  # starts the refresh; this scrape reads the list as it was
    # Waits for that refresh's thread to end (look_up_now would start another if it had ended).
    waited = time.monotonic() + 10
    while any(t.name == "dli-discovery" for t in threading.enumerate()) and time.monotonic() < waited:
        time.sleep(0.01)
    assert ids(first) == ["id-cn-north-4"] and fake.lookups == 2
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4", "id-ap-southeast-1"]  # a new project is read
    found_by.look_up_now(FAR)
    assert ids(found_by.targets(FAR)) == ["id-ap-southeast-1"]  # a removed project is no longer read
    assert changes == [["id-cn-north-4"], ["id-cn-north-4", "id-ap-southeast-1"], ["id-ap-southeast-1"]]
    assert fake.checked == ["id-cn-north-4", "id-ap-southeast-1"]  # a project read before is not checked again


def test_a_failed_look_up_keeps_the_last_list_and_is_tried_again_within_a_minute() -> None:
    clock = Clock()
    failure = Failure(Outcome.RETRY, "HTTP 500 IAM.0999: boom", status=500, error_code="IAM.0999", request_id="r-1")
    fake = Iam(found("cn-north-4"), failure, found("cn-north-4", "ap-southeast-1"))
    found_by = discovery(fake, clock)
    found_by.targets(FAR)
    clock.now = 600.0
    with captured_logs() as log:
        assert found_by.look_up_now(FAR).error.startswith("HTTP 500 IAM.0999")
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4"]  # kept
    assert "request_id=r-1" in log.getvalue() and "keeping the last list" in log.getvalue()
    assert found_by.families()[1].samples[0][3] == 1_800_000_000.0  # the last success, not the failure
    clock.now = 600.0 + RETRY_FAILED - 1
    found_by.targets(FAR)
    assert fake.lookups == 2
    clock.now = 600.0 + RETRY_FAILED
    found_by.targets(FAR)
    found_by.look_up_now(FAR)
    assert "id-ap-southeast-1" in ids(found_by.targets(FAR))


def test_a_refused_project_is_unreadable_and_tried_again_at_the_next_look_up() -> None:
    clock = Clock()
    fake = Iam(found("cn-north-4", "la-south-2"), refused={"id-la-south-2"})
    found_by = discovery(fake, clock)
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4"]
    assert [(s[2], s[3]) for s in found_by.families()[0].samples] == [(("readable",), 1), (("unreadable",), 1)]
    fake.refused.clear()  # the account was given DLI permission there
    clock.now = 600.0
    found_by.look_up_now(FAR)
    assert ids(found_by.targets(FAR)) == ["id-cn-north-4", "id-la-south-2"]
    assert fake.checked.count("id-la-south-2") == 2 and fake.checked.count("id-cn-north-4") == 1


def test_probed_projects_are_named_when_known() -> None:
    found_by = discovery(Iam(found("cn-north-4")))
    found_by.targets(FAR)
    known = found_by.known(Target("id-cn-north-4", "http://dli/cn-north-4", "cn-north-4"))
    stranger = found_by.known(Target("elsewhere", "http://dli/cn-north-4", "cn-north-4"))
    assert (known.name, known.source) == ("cn-north-4", DISCOVERED) and (stranger.name, stranger.source) == ("", PROBED)


def test_http_service_discovery_lists_each_project_read() -> None:
    found_by = discovery(Iam(found("cn-north-4", "cn-north-4_analytics")))
    assert found_by.http_sd(FAR) == [
        {"targets": ["id-cn-north-4"], "labels": {"__meta_dli_region": "cn-north-4",
                                                   "__meta_dli_project_name": "cn-north-4",
                                                   "__param_region": "cn-north-4"}},
        {"targets": ["id-cn-north-4_analytics"], "labels": {"__meta_dli_region": "cn-north-4",
                                                             "__meta_dli_project_name": "cn-north-4_analytics",
                                                             "__param_region": "cn-north-4"}}]


def test_without_discovery_the_configured_projects_alone() -> None:
    configured = (Target("p1", "http://dli"),)
    off = Discovery(configured, enabled=False)
    assert off.targets(FAR) == configured and off.families() == [] and off.report().looked_up is False


# --- the IAM calls ---

def test_the_global_signature_matches_the_official_sdks_global_credentials() -> None:
    """The project list is signed as GlobalCredentials signs it: X-Domain-Id, no X-Project-Id."""
    key = AccessKey(ak=DEMO_AK, sk=SecretStr(DEMO_SK), wall=lambda: 1_764_000_000.0)
    call = iam.Call.get("https://iam.myhuaweicloud.com" + iam.PROJECTS_PATH, "", {schema.DOMAIN_HEADER: "d-1"})
    added = key.global_authorizer().authorize(call, FAR).headers
    assert isinstance(added, dict)
    headers = {**call.headers, **added}
    assert schema.PROJECT_HEADER not in headers
    request = SdkRequest(method="GET", schema="https", host="iam.myhuaweicloud.com", resource_path=iam.PROJECTS_PATH,
                         query_params=[],
                         header_params={k: v for k, v in headers.items()
                                        if k not in ("Authorization", schema.DOMAIN_HEADER)}, body="")
    signed = GlobalCredentials(DEMO_AK, DEMO_SK, "d-1").sign_request(request)
    assert signed.header_params[schema.DOMAIN_HEADER] == "d-1"
    assert added["Authorization"] == signed.header_params["Authorization"]


@pytest.mark.parametrize(("payload", "expected"), [
    ({"projects": [{"id": "a", "name": "cn-north-4", "enabled": True}, {"id": "b", "name": "MOS", "enabled": "false"},
                   {"name": "no id"}, "junk", {"id": "c", "name": "cn-east-3"}]},
     [FoundProject("a", "cn-north-4", True), FoundProject("b", "MOS", False), FoundProject("c", "cn-east-3", True)]),
    ({"projects": []}, []),
])
def test_the_project_list_is_read_leniently(payload: Any, expected: list[FoundProject]) -> None:
    assert iam.parse_projects(payload) == expected


@pytest.mark.parametrize("payload", [None, [], {"projects": "many"}, {}])
def test_an_answer_without_a_project_list_fails_the_look_up(payload: Any) -> None:
    with pytest.raises(schema.PayloadError, match="no list of projects"):
        iam.parse_projects(payload)


@pytest.fixture
def account() -> Iterator[Simulator]:
    regions = {"p-bj": "cn-north-4", "p-sub": "cn-north-4", "p-sg": "ap-southeast-1", "p-no": "la-south-2"}
    data = {"p-bj": jobs(3), "p-sub": jobs(2, start=10), "p-sg": jobs(1, start=20), "p-no": []}
    users = {("acme", "monitor"): "pw"}
    people = Account([project("p-bj", "cn-north-4"), project("p-sub", "cn-north-4_analytics", parent_id="p-bj"),
                      project("p-sg", "ap-southeast-1"), project("p-no", "la-south-2"),
                      project("p-mos", "MOS"), project("p-off", "cn-east-3", enabled=False)])
    with Simulator(data, regions=regions, account=people, denied={"p-no"}, iam_users=users) as sim:
        yield sim


def discovering(sim: Simulator, **overrides: Any) -> Any:
    return running_exporter(settings_for(sim, project_ids="", discovery="auto", endpoint=sim.url + "/{region}",
                                         **overrides))


def test_with_the_key_alone_every_readable_project_is_read(account: Simulator) -> None:
    with discovering(account) as exporter:
        got = scrape(exporter)
    assert got.by("dli_up") == {"p-bj": 1, "p-sub": 1, "p-sg": 1}  # la-south-2 refused: unreadable, not down
    assert {dict(labels)["project_id"]: (dict(labels)["name"], dict(labels)["region"], dict(labels)["source"])
            for name, labels in got.series if name == "dli_project_info"} == {
        "p-bj": ("cn-north-4", "cn-north-4", "discovered"),
        "p-sub": ("cn-north-4_analytics", "cn-north-4", "discovered"),
        "p-sg": ("ap-southeast-1", "ap-southeast-1", "discovered")}
    assert got.by("dli_discovered_projects", "state") == {"readable": 3, "unreadable": 1}
    assert got.value("dli_discovery_last_success_timestamp_seconds") is not None
    calls = account.recorded("/v3/auth/")
    assert [c.path for c in calls] == [iam.DOMAINS_PATH, iam.PROJECTS_PATH]  # the account's id once, then its list
    assert calls[1].headers["x-domain-id"] == account.account.domain_id and "x-project-id" not in calls[1].headers
    assert got.total("dli_api_requests_total", project_id="") == 2  # IAM's calls, of no project


def test_an_iam_user_looks_up_with_a_token_scoped_to_the_account(account: Simulator) -> None:
    with discovering(account, ak=None, sk=None, iam_username="monitor", iam_password="pw", iam_domain="acme") as exp:
        got = scrape(exp)
    assert got.by("dli_up") == {"p-bj": 1, "p-sub": 1, "p-sg": 1}
    [lookup] = account.recorded("/v3/auth/projects")
    assert "x-auth-token" in lookup.headers and "x-domain-id" not in lookup.headers
    assert got.value("dli_iam_logins_total", project_id="", code="201") == 1  # the account's token


def test_a_project_added_while_running_is_read_after_the_next_look_up(account: Simulator) -> None:
    with discovering(account, discovery_interval_seconds=1) as exporter:
        assert set(scrape(exporter).by("dli_up")) == {"p-bj", "p-sub", "p-sg"}
        account.set_jobs("p-new", jobs(4, start=40))
        account.regions["p-new"] = "ap-southeast-1"
        account.account.projects.append(project("p-new", "ap-southeast-1_team"))
        account.account.projects = [p for p in account.account.projects if p["id"] != "p-sg"]
        seen: set[str] = set()
        for _ in range(40):  # the look-up runs in the background: within a second and a scrape or two
            seen = set(scrape(exporter).by("dli_up"))
            if "p-new" in seen:
                break
            threading.Event().wait(0.1)
    assert seen == {"p-bj", "p-sub", "p-new"}  # p-sg is gone from the account: its series vanish


def test_a_failed_look_up_at_start_up_reads_nothing_and_says_why(account: Simulator) -> None:
    account.add_fault(Fault("error", resource="iam", status=500, error_code="IAM.0999", error_msg="boom"))
    with captured_logs() as log, discovering(account, retries=0) as exporter:
        got = scrape(exporter)
    assert got.status == 200 and got.by("dli_up") == {}
    assert got.by("dli_discovered_projects", "state") == {"readable": 0, "unreadable": 0}
    assert got.value("dli_discovery_last_success_timestamp_seconds") is None
    assert "project look-up failed: keeping the last list" in log.getvalue() and "request_id=" in log.getvalue()


def test_a_refused_key_is_held_back_for_iam_and_dli_alike(account: Simulator) -> None:
    with discovering(account, sk="a-wrong-key") as exporter:
        for _ in range(3):
            scrape(exporter)
    assert len(account.recorded("/")) == 1  # one refused call: the key is then held back
    assert account.gateway.lockouts == 0


def test_the_discovery_route_serves_prometheus_http_sd(account: Simulator) -> None:
    with discovering(account) as exporter:
        resp = requests.get(exporter.url + "/discovery", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    groups = json.loads(resp.text)
    assert {g["targets"][0]: g["labels"]["__meta_dli_project_name"] for g in groups} == {
        "p-bj": "cn-north-4", "p-sub": "cn-north-4_analytics", "p-sg": "ap-southeast-1"}
    assert all(g["labels"]["__param_region"] == g["labels"]["__meta_dli_region"] for g in groups)


def test_check_prints_what_the_look_up_found(account: Simulator) -> None:
    from exporter.preflight import run_check

    out = io.StringIO()
    settings = settings_for(account, project_ids="", discovery="auto", endpoint=account.url + "/{region}")
    assert run_check(settings, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("discovery  IAM " + account.url) and lines[0].endswith(
        "projects found 6: read 3, refused 1, left out 2")
    assert any(line.split()[:2] == ["refused", "p-no"] and "(403)" in line for line in lines)
    assert any(line.split()[:3] == ["left", "out", "p-mos"] and line.endswith("not a region's project")
               for line in lines)
    assert any(line.split()[:3] == ["left", "out", "p-off"] and line.endswith("disabled") for line in lines)
    assert sum(line.startswith("project ") for line in lines) == 3


def test_a_project_read_and_then_refused_is_down_not_unreadable(account: Simulator) -> None:
    with discovering(account) as exporter:
        assert scrape(exporter).up("p-bj") == 1
        account.denied.add("p-bj")  # its DLI permission was taken away
        got = scrape(exporter)
    assert got.up("p-bj") == 0 and got.up("p-sg") == 1  # it pages as down, as any project read before
    assert got.by("dli_discovered_projects", "state") == {"readable": 3, "unreadable": 1}
