"""The simulator's data: plausible jobs, the demo's account (projects in two regions and a
sub-project, and what IAM lists besides), and large sets for benchmarks."""

from __future__ import annotations

import random
import time
from typing import Any

from .iam import Account, project

JOB_TYPES = ("flink_sql_job", "flink_opensource_sql_job", "flink_sql_edge_job", "flink_jar_job")
STATUSES = ("job_init", "job_submitting", "job_submit_fail", "job_running", "job_running_exception",
            "job_downloading", "job_idle", "job_canceling", "job_cancel_success", "job_cancel_fail",
            "job_savepointing", "job_arrearage_stopped", "job_arrearage_recovering", "job_finish")
RUN_MODES = ("shared_cluster", "exclusive_cluster", "edge_node")
QUEUES = ("etl_queue", "realtime_queue", "analytics_queue")  # general queues: where Flink jobs run
FULL_QUEUE = "realtime_queue"  # in the demo's first project, its running jobs ask every CU it has
SQL_QUEUE = "default"  # every project has it: an SQL queue, which the list hides unless asked for all
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
# Two regions, as many tenants have, and a sub-project of the first (cn-north-4_analytics).
DEMO_PROJECTS = ("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "f0e1d2c3b4a5968778695a4b3c2d1e0f",
                 "5a6b7c8d9e0f11223344556677889900")
DEMO_REGIONS = {DEMO_PROJECTS[0]: "cn-north-4", DEMO_PROJECTS[1]: "ap-southeast-1", DEMO_PROJECTS[2]: "cn-north-4"}
DEMO_NAMES = {DEMO_PROJECTS[0]: "cn-north-4", DEMO_PROJECTS[1]: "ap-southeast-1",
              DEMO_PROJECTS[2]: "cn-north-4_analytics"}
# What else IAM lists for the demo's account, none of it read: OBS's project (no region), a
# disabled project, a region DLI is not offered in, and a project whose DLI lists refuse the key
# (403): the account may not use DLI there.
DEMO_DENIED = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
DEMO_OTHERS = (("7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29", "MOS", True),
               ("1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e", "cn-east-3", False),
               ("2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f", "cn-north-7", True), (DEMO_DENIED, "la-south-2", True))


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
    cus = rng.choice((2, 4, 8, 16))
    custom = job_type == "flink_jar_job" and rng.random() < 0.3  # a user's own image: no DLI Flink version
    job: dict[str, Any] = {
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
            "cu_number": cus,
            "manager_cu_number": rng.choice((1, 1, 2)),
            "parallel_number": rng.choice((1, 2, 4, 8)),
            "restart_when_exception": rng.random() < 0.6,
            "resume_checkpoint": False,
            "resume_max_num": -1,
            "tm_cus": 1,
            "tm_slot_num": 1,
            "flink_version": "" if custom else rng.choice(("1.12", "1.15", "1.17")),
            "feature": "custom" if custom else "basic",
            "image": "swr.cn-north-4.myhuaweicloud.com/team/flink-job:2.3" if custom else "",
            # "the number of actually used CUs; 0 means cu_number is used": some jobs use fewer.
            "real_cu_number": cus * 3 // 4 if cus > 2 and rng.random() < 0.25 else 0,
        },
        "_tags": {"team": rng.choice(("growth", "risk", "platform")), "env": rng.choice(("prod", "test"))},
    }
    if rng.random() < 0.2:  # v2 resources: parallelism in resource_config, JobManager and TaskManagers by spec
        job["job_config"].update(resource_config_version="v2", resource_config={
            "parallel_number": rng.choice((2, 4)), "max_slot": 2,
            "jobmanager_resource_spec": {"cpu": 1.0, "memory": "4G"},
            "taskmanager_resource_spec": {"cpu": 2.0, "memory": "8G"}})
    describe(job, rng)
    return job


# What DLI says of an abnormal status (status_desc), as it says it: the reason and what to do.
SUBMIT_FAILED = ("Failed to submit the job: queue {queue} has not enough compute units ({cus} CUs requested, 0 "
                 "free). Release CUs or scale out the queue, then submit the job again.")
SQL_ERROR = ("DLI.0005: Failed to parse the SQL statement: Encountered \"FORM\" at line 3, column 21. Was "
             "expecting one of: \"FROM\" ... Correct the statement and start the job again.")
FLINK_CAUSE = ("Job failed, restarts exhausted:  org.apache.flink.runtime.JobException: Recovery is suppressed "
               "by FixedDelayRestartBackoffTimeStrategy(maxNumberRestartAttempts=3, backoffTimeMS=10000)\n"
               "Caused by: java.lang.OutOfMemoryError: Java heap space\n\tat "
               "org.apache.flink.runtime.taskmanager.Task.doRun(Task.java:568)")
DESCRIPTIONS = {
    "job_cancel_fail": "Failed to cancel the job: the savepoint was not taken within 600 seconds.",
    "job_arrearage_stopped": "The job was stopped because the account is in arrears. Top up the account.",
}


def describe(job: dict[str, Any], rng: random.Random) -> None:
    """The job's status_desc for its status: the reason and advice for an abnormal status, else ""."""
    status = job["status"]
    if status == "job_submit_fail":
        text = SUBMIT_FAILED.format(queue=job["queue_name"], cus=job["job_config"]["cu_number"])
    elif status == "job_running_exception":
        text = SQL_ERROR if job["job_type"] != "flink_jar_job" and rng.random() < 0.4 else FLINK_CAUSE
    else:
        text = DESCRIPTIONS.get(status, "")
    job["status_desc"], job["_described"] = text, status


def _sql(name: str, rng: random.Random) -> str:
    source, sink = name.split("-", maxsplit=1)[0], name.replace("-", "_")
    return (f"CREATE SOURCE STREAM {source} (id BIGINT, v STRING, ts BIGINT) WITH (type = 'kafka', "  # noqa: S608
            f"kafka_bootstrap_servers = 'kafka:9092', kafka_topic = '{source}', encode = 'json');\n"
            f"CREATE SINK STREAM {sink} (id BIGINT, n BIGINT) WITH (type = 'dws', region = 'cn-north-4');\n"
            f"INSERT INTO {sink} SELECT id, COUNT(*) FROM {source} "
            f"GROUP BY TUMBLE(proctime, INTERVAL '{rng.choice((1, 5, 10))}' MINUTE), id;")


def demo_account() -> Account:
    """The demo's account as IAM lists it: the three projects with jobs, and the four others."""
    parents = {DEMO_PROJECTS[2]: DEMO_PROJECTS[0]}
    return Account([*(project(pid, DEMO_NAMES[pid], parent_id=parents.get(pid)) for pid in DEMO_PROJECTS),
                    *(project(pid, name, enabled=enabled) for pid, name, enabled in DEMO_OTHERS)])


def demo_projects(seed: int = 7, sizes: tuple[int, ...] = (48, 24, 6),
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
    _fill_queue(first, 15 + len(STATUSES), now_ms)
    for job in first:
        describe(job, rng)  # the statuses set above, with their reasons
    # What real answers hold now and then: a v2 job without resource_config (the SDK marks it
    # optional), and a field of the wrong type. Each loses that field, and nothing else.
    v2, odd = first[15 + len(STATUSES) + 4], first[15 + len(STATUSES) + 5]
    v2["job_config"]["resource_config_version"] = "v2"
    v2["job_config"].pop("resource_config", None)
    odd["has_savepoint"] = "unknown"
    return projects


def _fill_queue(jobs: list[dict[str, Any]], start: int, now_ms: int) -> None:
    """FULL_QUEUE: three running jobs from ``start`` on asking 16 + 8 + 8 CUs, all the queue has
    (see demo_queues), and one job waiting for CUs in job_submitting; every other job moves off it."""
    full, waiting = jobs[start:start + 3], jobs[start + 3]
    for job in jobs:
        if job["queue_name"] == FULL_QUEUE:
            job["queue_name"] = QUEUES[0]
    for job, cus in zip(full, (16, 8, 8), strict=True):
        job.update(queue_name=FULL_QUEUE, status="job_running", _pinned_status="job_running",
                   start_time=job["start_time"] or job["create_time"] + 60000)
        job["duration"] = max(0, now_ms - job["start_time"])
        job["job_config"].update(cu_number=cus, real_cu_number=0)
    waiting.update(queue_name=FULL_QUEUE, status="job_submitting", _pinned_status="job_submitting",
                   name="orders-enrich-backfill", start_time=0, duration=0, restart_times=0)


def demo_queues(projects: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each demo project's queues: those its jobs run on (FULL_QUEUE, in the first, exactly as
    large as its running jobs ask), and the SQL queue, restarting in the second project."""
    out = {}
    for index, (pid, jobs) in enumerate(projects.items()):
        queues = queues_for(jobs, seed=index)
        for queue in queues:
            if index == 0 and queue["queue_name"] == FULL_QUEUE:
                queue["cu_count"] = sum(_cus(j) for j in jobs if j["queue_name"] == FULL_QUEUE
                                        and j["status"] == "job_running")
                queue["cu_scale_in_limit"] = queue["cu_scale_out_limit"] = queue["cu_count"]
            if index == 1 and queue["queue_name"] == SQL_QUEUE:
                queue["is_restarting"] = True
        out[pid] = queues
    return out


def _cus(job: dict[str, Any]) -> int:
    config = job.get("job_config") or {}
    return int(config.get("real_cu_number") or config.get("cu_number") or 0)


def queues_for(jobs: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Plausible queues for ``jobs``: a general queue for each queue they name, large enough for
    all of them at once, and the SQL queue. Fields as the SDK's queue model has them, some left
    out (no scaling limits on a queue that does not scale, no pool where there is none)."""
    rng = random.Random(seed)
    names = sorted({str(j.get("queue_name")) for j in jobs if j.get("queue_name")} - {SQL_QUEUE})
    queues = [_queue(rng, SQL_QUEUE, "sql", 16, engine="spark", mode=0)]
    for i, name in enumerate(names):
        cus = max(16, -(-sum(_cus(j) for j in jobs if j.get("queue_name") == name) // 16) * 16)
        queue = _queue(rng, name, "general", cus, engine="flink", mode=i % 2 or 1)
        if i % 3 == 2:
            queue["elastic_resource_pool_name"] = f"pool_{name.split('_')[0]}"
            queue["resource_mode"] = 0
        if i % 2 == 0:
            queue.update(cu_scale_in_limit=16, cu_scale_out_limit=cus * 2)
        queues.append(queue)
    return queues


def _queue(rng: random.Random, name: str, queue_type: str, cus: int, *, engine: str, mode: int) -> dict[str, Any]:
    return {"queue_id": rng.randint(1000, 9999), "queue_name": name, "description": f"{queue_type} queue {name}",
            "owner": "data_team", "engine": engine, "create_time": 1_690_000_000_000 + rng.randint(0, 10**9),
            "queue_type": queue_type, "cu_count": cus, "charging_mode": 1, "resource_id": f"{rng.getrandbits(64):016x}",
            "enterprise_project_id": "0", "resource_mode": mode, "platform": "x86_64", "is_restarting": False,
            "labels": "multi_az=2", "feature": "basic", "queue_resource_type": "vm", "cu_spec": cus}


def synthetic_projects(jobs: int, projects: int = 1, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Large data sets for benchmarks: ``jobs`` jobs in each of ``projects`` projects."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out = {}
    for p in range(projects):
        base = (p + 1) * 10_000_000
        out[f"{p + 1:032x}"] = [make_job(base + i, rng, now_ms) for i in range(jobs)]
    return out
