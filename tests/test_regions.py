"""Projects in several regions, over HTTP: each is read at its region's endpoint, and
``dli_project_info`` says which region it is in."""

from __future__ import annotations

from collections.abc import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import Simulator
from exporter.wiring import Exporter
from tests.helpers import jobs

Start = Callable[..., Exporter]


def _samples(exporter: Exporter, name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = requests.get(exporter.url + "/metrics", timeout=10).text
    return {frozenset(s.labels.items()): s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name}


def test_each_project_is_read_at_its_regions_endpoint(exporter_for: Start) -> None:
    regions = {"p1": "cn-north-4", "p2": "ap-southeast-1"}
    with Simulator({"p1": jobs(150), "p2": jobs(3, start=1001)}, regions=regions) as sim:
        exporter = exporter_for(sim, endpoint=sim.url + "/{region}", region="",
                                project_ids="cn-north-4:p1,ap-southeast-1:p2")
        up = _samples(exporter, "dli_up")
        info = _samples(exporter, "dli_project_info")
        seen = {(r.region, r.path.split("/")[3]) for r in sim.recorded("/")}
    assert up == {frozenset({("project_id", "p1")}): 1.0, frozenset({("project_id", "p2")}): 1.0}
    configured = {("name", ""), ("source", "configured")}
    assert info == {frozenset({("project_id", "p1"), ("region", "cn-north-4"), *configured}): 1.0,
                    frozenset({("project_id", "p2"), ("region", "ap-southeast-1"), *configured}): 1.0}
    assert seen == {("cn-north-4", "p1"), ("ap-southeast-1", "p2")}  # every call at the project's own region


def test_a_project_given_the_wrong_region_is_down_and_the_others_are_not(exporter_for: Start) -> None:
    with Simulator({"p1": jobs(3), "p2": jobs(3, start=1001)}, regions={"p1": "cn-north-4", "p2": "cn-north-4"}) as sim:
        exporter = exporter_for(sim, endpoint=sim.url + "/{region}", region="cn-north-4",
                                project_ids="p1,ap-southeast-1:p2")
        up = _samples(exporter, "dli_up")
    assert up == {frozenset({("project_id", "p1")}): 1.0, frozenset({("project_id", "p2")}): 0.0}
