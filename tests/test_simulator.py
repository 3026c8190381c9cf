"""The simulator is a test instrument: it must reject what the real API rejects."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from exporter.dli.credentials import AkSkSigner
from exporter.dli.schema import list_url
from exporter.simulator import DEMO_AK, DEMO_SK, JOB_TYPES, RUN_MODES, Simulator, demo_projects
from tests.helpers import job, jobs


def get(sim: Simulator, params: list[tuple[str, str]], signer: Any = None, project: str = "p1",
        **headers: str) -> requests.Response:
    signer = signer or AkSkSigner(DEMO_AK, SecretStr(DEMO_SK))
    return requests.get(list_url(sim.url, project, params), auth=signer, timeout=5,
                        headers={"X-Project-Id": project, **headers})


@pytest.fixture
def sim() -> Any:
    data = [job(i, create_time=1_700_000_000_000 + (10 - i) * 1000, queue_name="q1" if i % 2 else "q2")
            for i in range(1, 11)]
    with Simulator({"p1": data}) as s:
        yield s


def test_paging_and_order(sim: Simulator) -> None:
    asc = get(sim, [("limit", "4"), ("offset", "0"), ("order", "asc")]).json()
    assert asc["job_list"]["total_count"] == 10
    assert [j["job_id"] for j in asc["job_list"]["jobs"]] == [10, 9, 8, 7]
    desc = get(sim, [("limit", "4"), ("offset", "8")]).json()  # desc is the default
    assert [j["job_id"] for j in desc["job_list"]["jobs"]] == [9, 10]


def test_filters_and_detail(sim: Simulator) -> None:
    body = get(sim, [("limit", "100"), ("queue_name", "q1")]).json()
    assert body["job_list"]["total_count"] == 5
    assert all("job_config" not in j for j in body["job_list"]["jobs"])
    detail = get(sim, [("limit", "1"), ("show_detail", "true")]).json()
    assert "job_config" in detail["job_list"]["jobs"][0]


@pytest.mark.parametrize("params", [[("limit", "101")], [("limit", "0")], [("offset", "-1")],
                                    [("order", "up")], [("job_type", "spark")], [("show_detail", "yes")]])
def test_bad_parameters_are_dli_0001(sim: Simulator, params: list[tuple[str, str]]) -> None:
    resp = get(sim, params)
    assert resp.status_code == 400 and resp.json()["error_code"] == "DLI.0001"


def test_a_wrong_secret_key_is_rejected_with_a_request_id(sim: Simulator) -> None:
    resp = get(sim, [("limit", "1")], AkSkSigner(DEMO_AK, SecretStr("wrong")))
    assert resp.status_code == 401 and resp.json()["error_code"] == "APIG.0301"
    assert resp.headers["X-Request-Id"]


def test_a_tampered_query_is_rejected(sim: Simulator) -> None:
    prepared = requests.Request("GET", list_url(sim.url, "p1", [("limit", "1")]),
                                headers={"X-Project-Id": "p1"}).prepare()
    AkSkSigner(DEMO_AK, SecretStr(DEMO_SK))(prepared)
    prepared.url = (prepared.url or "").replace("limit=1", "limit=2")
    resp = requests.Session().send(prepared, timeout=5)
    assert resp.status_code == 401


def test_an_old_signature_is_rejected(sim: Simulator) -> None:
    old = AkSkSigner(DEMO_AK, SecretStr(DEMO_SK), clock=lambda: time.time() - 16 * 60)
    assert get(sim, [("limit", "1")], old).status_code == 401
    fresh = AkSkSigner(DEMO_AK, SecretStr(DEMO_SK), clock=lambda: time.time() - 14 * 60)
    assert get(sim, [("limit", "1")], fresh).status_code == 200


def test_temporary_credentials_need_their_token() -> None:
    with Simulator({"p1": jobs(1)}, credentials={"TMPAK": "tmpsk"}, temporary={"TMPAK": "sec-token"}) as sim:
        without = get(sim, [("limit", "1")], AkSkSigner("TMPAK", SecretStr("tmpsk")))
        with_token = get(sim, [("limit", "1")], AkSkSigner("TMPAK", SecretStr("tmpsk"), SecretStr("sec-token")))
    assert without.status_code == 401 and with_token.status_code == 200


def test_unsigned_requests_are_rejected(sim: Simulator) -> None:
    resp = requests.get(list_url(sim.url, "p1", [("limit", "1")]), timeout=5)
    assert resp.status_code == 401


def test_the_demo_data() -> None:
    projects = demo_projects()
    all_jobs = [j for js in projects.values() for j in js]
    assert len(projects) >= 2 and len(all_jobs) >= 60
    assert {j["job_type"] for j in all_jobs} == set(JOB_TYPES)
    assert {j["run_mode"] for j in all_jobs} == set(RUN_MODES)
    assert len({j["queue_name"] for j in all_jobs}) >= 3
    statuses = {j["status"] for j in all_jobs}
    assert {"job_running", "job_running_exception", "job_submit_fail", "job_arrearage_stopped"} <= statuses
    assert len({j["job_id"] for j in all_jobs}) == len(all_jobs)


def test_jobs_evolve_and_troubled_jobs_stay_troubled() -> None:
    data = demo_projects()
    with Simulator(data, evolve=True, evolve_every=0.01, seed=3) as sim:
        before = sum(int(j.get("restart_times") or 0) for js in data.values() for j in js)
        time.sleep(0.3)
        for pid in data:
            assert get(sim, [("limit", "1")], project=pid).status_code == 200
        after = sum(int(j.get("restart_times") or 0) for js in sim.projects.values() for j in js)
        pinned = [j for js in sim.projects.values() for j in js if j.get("_pinned_status")]
    assert after > before
    assert {j["status"] for j in pinned} == {"job_running_exception", "job_submit_fail", "job_arrearage_stopped"}


def test_the_official_sdk_client_is_accepted() -> None:
    """The simulator's verifier accepts what Huawei's own client sends, odd characters included."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkdli.v1 import DliClient, ListFlinkJobsRequest

    with Simulator({"p1": [*jobs(150), job(999, name="订单 作业~1")]}) as sim:
        client = (DliClient.new_builder().with_credentials(BasicCredentials(DEMO_AK, DEMO_SK, "p1"))
                  .with_endpoints([sim.url]).build())
        page = client.list_flink_jobs(ListFlinkJobsRequest(limit=100, offset=100, order="asc", show_detail=True))
        named = client.list_flink_jobs(ListFlinkJobsRequest(limit=10, name="订单 作业~1"))
        assert [r.status for r in sim.recorded()] == [200, 200]
    assert page.job_list.total_count == 151 and len(page.job_list.jobs) == 51
    assert [j.job_id for j in named.job_list.jobs] == [999]
