"""``python -m exporter.simulator``: the simulated API alone, printing its URL and demo credentials."""

from __future__ import annotations

import argparse
import json
import threading

from . import __doc__ as package_doc
from .data import DEMO_AK, DEMO_SK, demo_projects, synthetic_projects
from .gateway import Gateway
from .service import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator",
                                     description=(package_doc or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--jobs", type=int, default=0, help="jobs per project (default: the demo's data)")
    parser.add_argument("--projects", type=int, default=1, help="projects, with --jobs")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--evolve", action="store_true", help="let jobs change over time")
    parser.add_argument("--live-durations", action="store_true",
                        help="running jobs' durations grow with the clock, as in the real API")
    parser.add_argument("--sparse-summary", action="store_true",
                        help="the summary view also lacks queue_name, start_time and restart_times")
    parser.add_argument("--throttle", type=int, default=None, metavar="N",
                        help="allow N requests per caller per minute, then 429 without Retry-After")
    parser.add_argument("--lock-seconds", type=float, default=300.0,
                        help="how long 5 failed authentications lock an access key (default 300)")
    args = parser.parse_args(argv)
    data = synthetic_projects(args.jobs, args.projects) if args.jobs else demo_projects()
    gateway = Gateway(budget=args.throttle, lock_seconds=args.lock_seconds)
    sim = Simulator(data, latency=args.latency, evolve=args.evolve, live_durations=args.live_durations,
                    sparse_summary=args.sparse_summary, gateway=gateway).start(port=args.port)
    print(json.dumps({"url": sim.url, "ak": DEMO_AK, "sk": DEMO_SK, "project_ids": list(data)}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
