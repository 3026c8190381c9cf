"""What the kit pages in the demo, as shipped: the demo exporter, the real Prometheus with the
example configuration and rules (60 s scrapes, the rules' `for` durations) and the real
Alertmanager with the example configuration (its group waits and intervals), for some minutes.
Prints every notification as it arrives, then the count per receiver and group.

    .venv/bin/python -m tests.benchmarks.demo_notifications [--minutes 10]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from tests.test_deploy import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        stack = Stack(Path(root), shipped=True)
        stack.start()
        started, seen = time.monotonic(), 0
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(1)
                for payload in stack.received[seen:]:
                    names = sorted({a["labels"].get("name") or a["labels"].get("queue") or "-"
                                    for a in payload["alerts"]})
                    minutes = (time.monotonic() - started) / 60
                    print(f"{minutes:5.1f} min  {payload['receiver']:<10} {payload['status']:<8} "
                          f"{payload['groupLabels']}  {len(payload['alerts'])} alerts: {', '.join(names)}", flush=True)
                seen = len(stack.received)
        finally:
            stack.stop()
        groups = collections.Counter((p["receiver"], tuple(sorted(p["groupLabels"].items()))) for p in stack.received)
        print(f"\n{len(stack.received)} notifications in {args.minutes:g} minutes:")
        for (receiver, group), count in sorted(groups.items()):
            print(f"  {count} x {receiver}: {dict(group)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
