"""`make mutate`'s summary: the kill rate of the last mutmut run, from its CI/CD statistics.

Killed (and timed-out) mutants count as caught; survivors, and mutants that no selected test
reaches, count as missed. Prints one line per outcome and the kill rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STATS = Path("mutants") / "mutmut-cicd-stats.json"


def main() -> int:
    subprocess.run([str(Path(sys.executable).parent / "mutmut"), "export-cicd-stats"], check=True,
                   capture_output=True)
    stats = json.loads(STATS.read_text())
    caught = stats.get("killed", 0) + stats.get("timeout", 0)
    missed = stats.get("survived", 0) + stats.get("no_tests", 0)
    for key in ("killed", "timeout", "survived", "no_tests", "suspicious", "skipped", "total"):
        print(f"  {key:<10} {stats.get(key, 0):6d}")
    rate = caught / (caught + missed) if caught + missed else 0.0
    print(f"  kill rate  {rate:6.1%}  (caught / (caught + survived + not reached by a test))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
