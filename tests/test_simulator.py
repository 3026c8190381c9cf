"""The simulator is a test instrument: it must reject what the real API rejects."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from exporter.simulator import (
    DEMO_AK,
    DEMO_PROJECTS,
    DEMO_SK,
    FULL_QUEUE,
    JOB_TYPES,
    RUN_MODES,
    STATUSES,
    Fault,
    Gateway,
    Simulator,
    demo_projects,
    demo_queues,
)
from tests.helpers import SignedBy, job, jobs


def list_url(base: str, project: str, params: list[tuple[str, str]], path: str = "streaming/jobs") -> str:
    query = "&".join(f"{k}={requests.utils.quote(v, safe='~')}" for k, v in params)
    return f"{base}/v1.0/{project}/{path}" + (f"?{query}" if query else "")


def get(sim: Simulator, params: list[tuple[str, str]], signer: Any = None, project: str = "p1",
        path: str = "streaming/jobs", **headers: str) -> requests.Response:
    return requests.get(list_url(sim.url, project, params, path), auth=signer or SignedBy(DEMO_AK, DEMO_SK), timeout=5,
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
                                    [("order", "up")], [("job_type", "spark")], [("show_detail", "yes")],
                                    [("tags", "team")], [("tags", "team=a,env")]])
def test_bad_parameters_are_dli_0001(sim: Simulator, params: list[tuple[str, str]]) -> None:
    resp = get(sim, params)
    assert resp.status_code == 400 and resp.json()["error_code"] == "DLI.0001"


def test_the_tags_filter_takes_key_value_pairs_a_job_has_all_of() -> None:
    tagged = [{**job(1), "_tags": {"team": "risk", "env": "prod"}},
              {**job(2), "_tags": {"team": "risk", "env": "test"}},
              {**job(3), "_tags": {"team": "growth", "env": "prod"}}, job(4)]
    with Simulator({"p1": tagged}) as sim:
        def ids(tags: str) -> list[int]:
            return sorted(j["job_id"] for j in get(sim, [("limit", "10"), ("tags", tags)]).json()["job_list"]["jobs"])
        assert ids("team=risk") == [1, 2] and ids("team=risk,env=prod") == [1] and ids("env=prod") == [1, 3]
        assert ids("team=nobody") == [] and ids("risk=team") == []
        assert all("_tags" not in j for j in get(sim, [("limit", "10")]).json()["job_list"]["jobs"])


def test_abnormal_statuses_carry_dlis_reason_and_a_new_status_its_own() -> None:
    projects = demo_projects()
    described = {j["status"]: j["status_desc"] for js in projects.values() for j in js if j["status_desc"]}
    assert {"job_submit_fail", "job_running_exception"} <= set(described)
    assert "compute units" in described["job_submit_fail"]
    assert all(not j["status_desc"] for js in projects.values() for j in js if j["status"] == "job_running")
    raw = [{**job(1, status="job_submit_fail", status_desc="Failed to submit: old reason"),
            "_pinned_status": None, "_described": "job_submit_fail"}]
    with Simulator({"p1": raw}) as sim:
        sim.projects["p1"][0]["status"] = "job_arrearage_stopped"  # a status evolution leaves alone
        sim._evolve_step(time.time())
        [seen] = get(sim, [("limit", "1")]).json()["job_list"]["jobs"]
    assert seen["status"] == "job_arrearage_stopped" and "arrears" in seen["status_desc"]


def test_the_demo_holds_what_real_answers_hold_now_and_then() -> None:
    """Real CUs below the configured ones, manager CUs, custom images, v2 resources with and
    without resource_config, and one field of the wrong type."""
    jobs_ = [j for js in demo_projects().values() for j in js]
    configs = [j["job_config"] for j in jobs_]
    assert any(0 < c["real_cu_number"] < c["cu_number"] for c in configs)
    assert {c["manager_cu_number"] for c in configs} >= {1, 2}
    assert any(c["feature"] == "custom" for c in configs) and any(c["feature"] == "basic" for c in configs)
    v2 = [c for c in configs if c.get("resource_config_version") == "v2"]
    assert any("resource_config" in c for c in v2) and any("resource_config" not in c for c in v2)
    assert [j["has_savepoint"] for j in jobs_ if not isinstance(j["has_savepoint"], bool)] == ["unknown"]


def test_a_wrong_secret_key_is_rejected_with_a_request_id(sim: Simulator) -> None:
    resp = get(sim, [("limit", "1")], SignedBy(DEMO_AK, "wrong"))
    assert resp.status_code == 401 and resp.json()["error_code"] == "APIGW.0301"
    assert resp.headers["X-Request-Id"]


def test_a_tampered_query_is_rejected(sim: Simulator) -> None:
    prepared = requests.Request("GET", list_url(sim.url, "p1", [("limit", "1")]),
                                headers={"X-Project-Id": "p1"}).prepare()
    SignedBy(DEMO_AK, DEMO_SK)(prepared)
    prepared.url = (prepared.url or "").replace("limit=1", "limit=2")
    resp = requests.Session().send(prepared, timeout=5)
    assert resp.status_code == 401


def test_an_old_signature_is_rejected(sim: Simulator) -> None:
    old = SignedBy(DEMO_AK, DEMO_SK, wall=lambda: time.time() - 16 * 60)
    assert get(sim, [("limit", "1")], old).status_code == 401
    fresh = SignedBy(DEMO_AK, DEMO_SK, wall=lambda: time.time() - 14 * 60)
    assert get(sim, [("limit", "1")], fresh).status_code == 200


def test_temporary_credentials_need_their_token() -> None:
    with Simulator({"p1": jobs(1)}, credentials={"TMPAK": "tmpsk"}, temporary={"TMPAK": "sec-token"}) as sim:
        without = get(sim, [("limit", "1")], SignedBy("TMPAK", "tmpsk"))
        with_token = get(sim, [("limit", "1")], SignedBy("TMPAK", "tmpsk", "sec-token"))
    assert without.status_code == 401 and with_token.status_code == 200


def test_unsigned_requests_are_rejected(sim: Simulator) -> None:
    resp = requests.get(list_url(sim.url, "p1", [("limit", "1")]), timeout=5)
    assert resp.status_code == 401


# --- queues ---

def test_the_queue_list_gives_sql_queues_unless_asked_for_others(sim: Simulator) -> None:
    """As documented: queue_type defaults to sql, which leaves out the general queues Flink runs on."""
    default = get(sim, [], path="queues").json()
    assert default["is_success"] is True  # a bool here, unlike the job list's string
    assert {q["queue_type"] for q in default["queues"]} == {"sql"}
    general = get(sim, [("queue_type", "general")], path="queues").json()["queues"]
    assert {q["queue_name"] for q in general} == {"q1", "q2"} and {q["queue_type"] for q in general} == {"general"}
    every = get(sim, [("queue_type", "all")], path="queues").json()["queues"]
    assert len(every) == len(default["queues"]) + len(general)
    bad = get(sim, [("queue_type", "flink")], path="queues")
    assert bad.status_code == 400 and bad.json()["error_code"] == "DLI.0001"


def test_a_queues_used_cus_are_those_its_running_jobs_ask() -> None:
    data = [job(1, queue_name="q1", job_config={"cu_number": 4}),
            job(2, queue_name="q1", job_config={"cu_number": 8, "real_cu_number": 6}),
            job(3, queue_name="q1", status="job_submitting", job_config={"cu_number": 16})]
    with Simulator({"p1": data}) as sim:
        [q1] = [q for q in get(sim, [("queue_type", "all")], path="queues").json()["queues"]
                if q["queue_name"] == "q1"]
    assert q1["used_cu"] == 10.0 and q1["cu_count"] >= 28  # sized for every job it has


def test_queue_faults_and_job_faults_are_each_their_own(sim: Simulator) -> None:
    sim.add_fault(Fault("error", status=500, resource="queues"))
    assert get(sim, [("queue_type", "all")], path="queues").status_code == 500
    assert get(sim, [("limit", "1")]).status_code == 200
    sim.clear_faults()
    sim.add_fault(Fault("error", status=503))  # a fault of the jobs, as every one was before queues
    assert get(sim, [("limit", "1")]).status_code == 503
    assert get(sim, [("queue_type", "all")], path="queues").status_code == 200


def test_the_demos_full_queue() -> None:
    """One general queue of the demo's first project is full: its running jobs ask every CU it
    has, and a job waits on it in job_submitting. Every job runs on a queue that exists."""
    projects = demo_projects()
    queues = demo_queues(projects)
    first = next(iter(projects))
    [full] = [q for q in queues[first] if q["queue_name"] == FULL_QUEUE]
    on_it = [j for j in projects[first] if j["queue_name"] == FULL_QUEUE]
    running = sum(j["job_config"]["cu_number"] for j in on_it if j["status"] == "job_running")
    assert full["queue_type"] == "general" and running == full["cu_count"] > 0
    assert [j["status"] for j in on_it if j["status"] != "job_running"] == ["job_submitting"]
    for pid, jobs_of in projects.items():
        assert {j["queue_name"] for j in jobs_of} <= {q["queue_name"] for q in queues[pid]}
    with Simulator(projects, evolve=True, evolve_every=0.01, queues=queues) as sim:
        time.sleep(0.2)
        for _ in range(3):
            get(sim, [("limit", "1")], project=first)  # the jobs evolve; the full queue's stay as they are
        statuses = sorted(j["status"] for j in sim.projects[first] if j["queue_name"] == FULL_QUEUE)
    assert statuses == ["job_running"] * 3 + ["job_submitting"]


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
    assert {j["status"] for j in pinned} == set(STATUSES)  # the showcase's troubles, and every status once


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


# The two views as dli-api.md documents them (spelled here from the document, not imported from
# the simulator, so that the simulator is held to the document).
DOC_SUMMARY_ONLY = {"duration", "user_name", "root_id", "sql_body", "main_class", "execution_graph", "update_time"}
DOC_DETAIL_ONLY = {"run_mode", "job_config", "user_id", "project_id", "entrypoint_args"}
SPARSE = {"queue_name", "start_time", "restart_times"}


def _jobs(sim: Simulator, detail: bool, project: str = "p1") -> list[dict[str, Any]]:
    params = [("limit", "100"), *([("show_detail", "true")] if detail else [])]
    resp = get(sim, params, project=project)
    assert resp.status_code == 200
    return list(resp.json()["job_list"]["jobs"])


def test_each_view_carries_only_its_documented_fields() -> None:
    with Simulator(demo_projects()) as sim:
        summary, detail = _jobs(sim, False, DEMO_PROJECTS[0]), _jobs(sim, True, DEMO_PROJECTS[0])
    assert summary and all(not (DOC_DETAIL_ONLY & j.keys()) for j in summary)
    assert detail and all(not (DOC_SUMMARY_ONLY & j.keys()) for j in detail)
    assert all({"duration", "user_name", "status"} <= j.keys() for j in summary)
    assert all({"run_mode", "job_config", "status"} <= j.keys() for j in detail)
    assert all(j.keys() >= SPARSE for j in summary)  # the documented mode carries them in both


def test_the_sparse_summary_also_lacks_queue_start_and_restarts() -> None:
    with Simulator({"p1": jobs(3)}, sparse_summary=True) as sim:
        summary, detail = _jobs(sim, False), _jobs(sim, True)
    assert all(not ((SPARSE | DOC_DETAIL_ONLY) & j.keys()) for j in summary)
    assert all(j.keys() >= SPARSE and not (DOC_SUMMARY_ONLY & j.keys()) for j in detail)


def test_five_failures_in_a_row_lock_the_key_even_for_right_signatures() -> None:
    now = [1000.0]
    gateway = Gateway(lock_seconds=300, clock=lambda: now[0])
    wrong = SignedBy(DEMO_AK, "not-the-secret")
    with Simulator({"p1": jobs(1)}, gateway=gateway) as sim:
        for _ in range(4):
            assert get(sim, [("limit", "1")], signer=wrong).status_code == 401
        assert get(sim, [("limit", "1")]).status_code == 200  # a success resets the count
        for _ in range(4):
            get(sim, [("limit", "1")], signer=wrong)
        assert gateway.lockouts == 0
        get(sim, [("limit", "1")], signer=wrong)  # the fifth in a row
        assert gateway.lockouts == 1
        locked = get(sim, [("limit", "1")])  # signed right
        assert locked.status_code == 401 and locked.json()["error_code"] == "APIGW.0301"
        assert "locked" in locked.json()["error_msg"]
        now[0] += 300
        assert get(sim, [("limit", "1")]).status_code == 200


def test_throttling_refuses_past_the_budget_until_the_next_window_without_retry_after() -> None:
    now = [1200.0]  # the start of a minute
    gateway = Gateway(budget=2, window=60, clock=lambda: now[0])
    with Simulator({"p1": jobs(1)}, gateway=gateway) as sim:
        assert [get(sim, [("limit", "1")]).status_code for _ in range(2)] == [200, 200]
        refused = get(sim, [("limit", "1")])
        now[0] += 59
        still = get(sim, [("limit", "1")])
        now[0] += 1
        again = get(sim, [("limit", "1")])
    assert refused.status_code == 429 and refused.json()["error_code"] == "APIGW.0308"
    assert "Retry-After" not in refused.headers
    assert still.status_code == 429 and again.status_code == 200 and gateway.throttled == 2
