"""The simulator's data: plausible jobs, the demo's two projects, and large sets for benchmarks."""

from __future__ import annotations

import random
import time
from typing import Any

JOB_TYPES = ("flink_sql_job", "flink_opensource_sql_job", "flink_sql_edge_job", "flink_jar_job")
STATUSES = ("job_init", "job_submitting", "job_submit_fail", "job_running", "job_running_exception",
            "job_downloading", "job_idle", "job_canceling", "job_cancel_success", "job_cancel_fail",
            "job_savepointing", "job_arrearage_stopped", "job_arrearage_recovering", "job_finish")
RUN_MODES = ("shared_cluster", "exclusive_cluster", "edge_node")
QUEUES = ("default", "etl_queue", "realtime_queue", "analytics_queue")
USERS = ("alice", "bob", "data_team")
STATUS_WEIGHTS = {
    "job_running": 30, "job_running_exception": 3, "job_submit_fail": 2, "job_arrearage_stopped": 1,
    "job_init": 3, "job_submitting": 2, "job_cancel_success": 4, "job_finish": 3, "job_idle": 1,
    "job_savepointing": 1, "job_canceling": 1, "job_downloading": 1, "job_cancel_fail": 1,
    "job_arrearage_recovering": 1,
}
NAME_PARTS = ("orders", "clicks", "payments", "sessions", "inventory", "fraud", "ads", "iot", "logs", "users")
NAME_VERBS = ("enrich", "aggregate", "dedupe", "join", "sink", "window", "detect", "etl")

DEMO_AK = "DEMOACCESSKEY0000000"
DEMO_SK = "demo-secret-key-not-for-production"
DEMO_PROJECTS = ("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "f0e1d2c3b4a5968778695a4b3c2d1e0f")
DEMO_REGIONS = {DEMO_PROJECTS[0]: "cn-north-4", DEMO_PROJECTS[1]: "ap-southeast-1"}  # two regions, as many tenants have


def make_job(job_id: int, rng: random.Random, now_ms: int, status: str | None = None) -> dict[str, Any]:
    """One plausible job with the fields of both views (the service leaves out what a view lacks)."""
    status = status or rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    created = now_ms - rng.randint(3600, 90 * 86400) * 1000
    started = 0
    if status in ("job_running", "job_running_exception", "job_savepointing", "job_canceling",
                  "job_cancel_success", "job_finish", "job_arrearage_stopped", "job_idle"):
        started = created + rng.randint(60, 3600) * 1000
    duration = max(0, now_ms - started) if status == "job_running" and started else (
        rng.randint(60, 86400) * 1000 if started else 0)
    name = f"{rng.choice(NAME_PARTS)}-{rng.choice(NAME_VERBS)}-{job_id % 1000:03d}"
    running_like = status in ("job_running", "job_running_exception", "job_savepointing")
    job_type = rng.choice(JOB_TYPES)
    sql = job_type != "flink_jar_job"
    return {
        "job_id": job_id,
        "name": name,
        "desc": f"Demo job {name}",
        "user_name": rng.choice(USERS),
        "job_type": job_type,
        "status": status,
        "status_desc": "",
        "create_time": created,
        "start_time": started,
        "duration": duration,
        "root_id": -1,
        "graph_editor_enabled": False,
        "has_savepoint": rng.random() < 0.3,
        "user_id": "0c9f3a7e5d0a4b2c8e1f6a7b8c9d0e1f",
        "run_mode": "edge_node" if job_type == "flink_sql_edge_job" else rng.choice(RUN_MODES[:2]),
        # A summary page carries each SQL job's whole script: pages are bigger than one might think.
        "sql_body": _sql(name, rng) if sql else "",
        "main_class": "" if sql else "com.example.flink.StreamingJob",
        "entrypoint_args": "" if sql else "--env prod",
        "execution_graph": "",
        "queue_name": rng.choice(QUEUES),
        "edge_group_ids": [],
        "restart_times": rng.randint(0, 3) if running_like else 0,
        "savepoint_path": "",
        "update_time": created,
        "job_config": {
            "checkpoint_enabled": rng.random() < 0.7,
            "checkpoint_mode": "exactly_once",
            "checkpoint_interval": 10,
            "cu_number": rng.choice((2, 4, 8, 16)),
            "manager_cu_number": 1,
            "parallel_number": rng.choice((1, 2, 4, 8)),
            "restart_when_exception": rng.random() < 0.6,
            "resume_checkpoint": False,
            "resume_max_num": -1,
            "tm_cus": 1,
            "tm_slot_num": 1,
            "flink_version": rng.choice(("1.12", "1.15", "1.17")),
            "feature": "basic",
            "real_cu_number": 0,
        },
        "_tags": {"team": rng.choice(("growth", "risk", "platform"))},
    }


def _sql(name: str, rng: random.Random) -> str:
    source, sink = name.split("-", maxsplit=1)[0], name.replace("-", "_")
    return (f"CREATE SOURCE STREAM {source} (id BIGINT, v STRING, ts BIGINT) WITH (type = 'kafka', "  # noqa: S608
            f"kafka_bootstrap_servers = 'kafka:9092', kafka_topic = '{source}', encode = 'json');\n"
            f"CREATE SINK STREAM {sink} (id BIGINT, n BIGINT) WITH (type = 'dws', region = 'cn-north-4');\n"
            f"INSERT INTO {sink} SELECT id, COUNT(*) FROM {source} "
            f"GROUP BY TUMBLE(proctime, INTERVAL '{rng.choice((1, 5, 10))}' MINUTE), id;")


def demo_projects(seed: int = 7, sizes: tuple[int, ...] = (48, 24),
                  now: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo's data: every job type, run mode and queue, and the troubled jobs alerts look for."""
    rng = random.Random(seed)
    now_ms = int((time.time() if now is None else now) * 1000)
    projects = {}
    next_id = 10001
    for index, size in enumerate(sizes):
        pid = DEMO_PROJECTS[index % len(DEMO_PROJECTS)] if index < len(DEMO_PROJECTS) else f"{index:032x}"
        projects[pid] = [make_job(next_id + n, rng, now_ms) for n in range(size)]
        next_id += size
    first = projects[next(iter(projects))]
    showcase = ("job_running_exception", "job_submit_fail", "job_arrearage_stopped")
    for offset, (job, status) in enumerate(zip(first[:3], showcase, strict=True)):
        job["status"] = job["_pinned_status"] = status
        job["name"] = ("payments-fraud-detect", "clicks-window-agg", "ads-billing-sink")[offset]
        job["start_time"] = job["start_time"] or job["create_time"] + 60000
    # Every job type, run mode and queue appears at least once, whatever the seed.
    for i, job in enumerate(first[3:3 + 12]):
        job["job_type"] = JOB_TYPES[i % len(JOB_TYPES)]
        job["run_mode"] = "edge_node" if job["job_type"] == "flink_sql_edge_job" else RUN_MODES[i % 2]
        job["queue_name"] = QUEUES[i % len(QUEUES)]
        job["status"] = "job_running"
        job["start_time"] = job["start_time"] or job["create_time"] + 60000
        job["duration"] = max(0, now_ms - job["start_time"])
    # And every status, held there so that a dashboard on the demo shows all fourteen.
    for job, status in zip(first[15:15 + len(STATUSES)], STATUSES, strict=True):
        job["status"] = job["_pinned_status"] = status
        if status in ("job_init", "job_submitting", "job_submit_fail", "job_downloading"):
            job["start_time"], job["duration"], job["restart_times"] = 0, 0, 0
        else:
            job["start_time"] = job["start_time"] or job["create_time"] + 60000
    return projects


def synthetic_projects(jobs: int, projects: int = 1, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Large data sets for benchmarks: ``jobs`` jobs in each of ``projects`` projects."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out = {}
    for p in range(projects):
        base = (p + 1) * 10_000_000
        out[f"{p + 1:032x}"] = [make_job(base + i, rng, now_ms) for i in range(jobs)]
    return out
