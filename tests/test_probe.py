"""``/probe?target=...&region=...``: one project on demand, with the same sweeps as /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from exporter.simulator import Fault, Simulator
from exporter.wiring import Exporter
from tests.helpers import Scrape, jobs, scrape

Start = Callable[..., Exporter]
A, B, C = "a" * 32, "b" * 32, "c" * 32  # project ids as /probe takes them: 32 lower-case hex digits


def probe(exporter: Exporter, timeout: float = 5, **params: str) -> Scrape:
    return scrape(exporter, "/probe", timeout=timeout, params=params)


def test_a_probe_answers_for_its_target_only(exporter_for: Start) -> None:
    with Simulator({A: jobs(150), B: jobs(3, start=1001)}) as sim:
        exporter = exporter_for(sim, project_ids="")  # /probe only: nothing configured
        got = probe(exporter, target=A).projects_of()
        metrics = scrape(exporter).projects_of()
    assert got["dli_up"] == {A} and got["dli_job_info"] == {A} and got["dli_project_info"] == {A}
    assert got["dli_queue_info"] == {A} and got["dli_resource_up"] == {A}  # the queues too
    assert all(ids <= {A, ""} for ids in got.values()), got
    # Exporter-wide series stay on /metrics; /metrics of a /probe-only exporter has only those.
    assert "dli_exporter_build_info" not in got and "dli_api_requests_total" not in got
    assert "dli_exporter_build_info" in metrics and "dli_up" not in metrics


def test_concurrent_probes_of_one_target_cost_one_sweep(exporter_for: Start) -> None:
    with Simulator({A: jobs(250)}, latency=0.2) as sim:
        exporter = exporter_for(sim, project_ids="", show_detail=False)
        answers: list[Scrape] = []
        threads = [threading.Thread(target=lambda: answers.append(probe(exporter, target=A))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        calls = len(sim.recorded("/v1.0/" + A + "/streaming"))
        queue_calls = len(sim.recorded("/v1.0/" + A + "/queues"))
    assert [r.status for r in answers] == [200] * 4 and all(r.up(A) == 1 for r in answers)
    assert calls == 3 and queue_calls == 1  # one sweep: three pages, and the queues once


def test_a_probe_answers_within_the_scrape_timeout_while_the_api_hangs(exporter_for: Start) -> None:
    with Simulator({A: jobs(3)}) as sim:
        exporter = exporter_for(sim, project_ids="", request_timeout_seconds=30)
        sim.add_fault(Fault("hang", seconds=20))
        started = time.monotonic()
        resp = probe(exporter, timeout=2, target=A)
        took = time.monotonic() - started
    assert resp.status == 200 and took < 2.0
    assert resp.up(A) == 0


def test_region_picks_the_endpoint(exporter_for: Start) -> None:
    regions = {A: "cn-north-4", B: "ap-southeast-1"}
    with Simulator({A: jobs(3), B: jobs(3, start=1001)}, regions=regions) as sim:
        exporter = exporter_for(sim, endpoint=sim.url + "/{region}", region="cn-north-4", project_ids="")
        default = probe(exporter, target=A)
        elsewhere = probe(exporter, target=B, region="ap-southeast-1")
        wrong = probe(exporter, target=B)  # the default region: not where B is
        regionless = exporter_for(sim, endpoint=sim.url + "/{region}", region="", project_ids="")
        unknown = probe(regionless, target=A)  # the endpoint needs a region: none given, none by default
        seen = [(r.region, r.path.split("/")[3]) for r in sim.recorded("/")]
    assert default.up(A) == 1
    assert elsewhere.value("dli_project_info", project_id=B, region="ap-southeast-1", name="", source="probe") == 1
    assert elsewhere.up(B) == 1 and wrong.up(B) == 0
    assert ("cn-north-4", A) in seen and ("ap-southeast-1", B) in seen and ("cn-north-4", B) in seen
    assert unknown.status == 400 and unknown.text == "region is required (no DLI_EXPORTER_REGION is set)\n"


def test_bad_parameters_get_a_short_400_that_does_not_echo_them(exporter_for: Start) -> None:
    with Simulator({A: jobs(3)}) as sim:
        exporter = exporter_for(sim, project_ids="")
        cases = [{}, {"target": "p1"}, {"target": A.upper()}, {"target": A + "0"}, {"target": "<script>x"},
                 {"target": A, "region": "Not A Region"}, {"target": A, "region": "x\r\ny"},
                 {"target": A, "extra": "1"}]
        answers = [probe(exporter, **params) for params in cases]
        doubled = requests.get(exporter.url + f"/probe?target={A}&target={B}", timeout=5)
        long = requests.get(exporter.url + "/probe?target=" + "a" * 600, timeout=5)
        calls = len(sim.recorded())
    for params, resp in zip(cases, answers, strict=True):
        assert resp.status == 400, params
        assert len(resp.text) < 100 and resp.text.count("\n") == 1, resp.text
        assert not any(value and value in resp.text for value in params.values()), resp.text
    assert doubled.status_code == 400 and long.status_code == 400
    assert calls == 0


def test_a_target_outside_the_allowed_list_gets_403_and_no_api_call(exporter_for: Start) -> None:
    with Simulator({A: jobs(3), B: jobs(3, start=1001), C: jobs(2, start=2001)}) as sim:
        exporter = exporter_for(sim, project_ids="", probe_allowed=f"{A},ap-southeast-1:{B}")
        refused = probe(exporter, target=C)
        wrong_region = probe(exporter, target=B)  # allowed in ap-southeast-1 only
        calls = len(sim.recorded())
        allowed = probe(exporter, target=A)
    assert refused.status == 403 and refused.text == "target not in DLI_EXPORTER_PROBE_ALLOWED\n"
    assert wrong_region.status == 403 and calls == 0
    assert allowed.status == 200 and allowed.up(A) == 1


def test_targets_unused_for_a_while_are_forgotten_but_configured_ones_stay() -> None:
    """Memory stays bounded however many distinct targets are probed."""
    from exporter.domain import Deadline, Result, Target
    from exporter.sweeper import Sweeper, Swept

    now = [0.0]
    forgotten: list[str] = []
    configured = Target("conf", "http://x")
    reads: list[str] = []

    def read(target: Target, deadline: Deadline) -> Result:
        reads.append(target.project_id)
        return Result([], None, 0.0, 1.0)

    sweeper = Sweeper([Swept("jobs", read, lambda result: 1e6)], pinned=[configured],
                      on_evict=lambda t: forgotten.append(t.project_id), idle_evict=600, clock=lambda: now[0])
    deadline = Deadline(1e9, 5.0, lambda: now[0])
    probed = [Target(f"{i:032x}", "http://x") for i in range(200)]
    for target in probed:
        sweeper.get([target], deadline)
    sweeper.get([configured], deadline)
    assert sweeper.target_count == 201
    now[0] = 650.0
    sweeper.get([probed[0]], deadline)  # still in use
    assert sorted(forgotten) == sorted(t.project_id for t in probed[1:])
    assert sweeper.target_count == 2
    reads.clear()
    sweeper.get([probed[1], configured], deadline)  # a forgotten one is read afresh; the others are cached
    assert reads == [probed[1].project_id]
    sweeper.close()


def test_a_forgotten_projects_counters_are_dropped_too() -> None:
    from exporter.selfmetrics import ApiStats

    stats = ApiStats()
    for pid in (A, B):
        stats.observe(pid, "200", 0.1)
        stats.retried(pid)
        stats.logged_in(pid, "201")
    stats.forget(A)
    assert set(stats.requests) == {(B, "200")} and set(stats.retries) == {B} and set(stats.logins) == {(B, "201")}
    assert not [s for f in stats.registry.collect() for s in f.samples if s.labels.get("project_id") == A]


def test_the_idle_setting_forgets_probed_projects_and_dli_targets_says_so(exporter_for: Start) -> None:
    """DLI_EXPORTER_PROBE_IDLE_SECONDS end to end: a probed project counts in dli_targets until it
    has gone unasked for that long; a configured one always counts."""
    def held(exporter: Exporter) -> float | None:
        return scrape(exporter).value("dli_targets")

    with Simulator({A: jobs(2), B: jobs(2, start=101), C: jobs(2, start=201)}) as sim:
        exporter = exporter_for(sim, project_ids=C, probe_idle_seconds=1)
        assert held(exporter) == 1
        for target in (A, B):
            assert probe(exporter, target=target).status == 200
        assert held(exporter) == 3
        deadline = time.monotonic() + 5
        while held(exporter) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert held(exporter) == 1
        # Its API counters went with it; the configured project's stay.
        counted = scrape(exporter).projects_of()["dli_api_requests_total"]
        assert counted == {C}
