"""The benchmark harness runs end to end at tiny sizes (its timing targets live in `make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_smoke_run_reports_every_figure() -> None:
    result = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench", "--smoke"], capture_output=True,
                            text=True, timeout=180, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("sweep / floor", "speed-up over the SDK", "4 concurrent scrapes", "CPU per job", "peak RSS",
                   "scaling"):
        assert figure in result.stdout
    # Single-flight: four simultaneous scrapes cost the API exactly one sweep.
    line = next(x for x in result.stdout.splitlines() if "4 concurrent scrapes" in x)
    assert line.rstrip().endswith("(1.00x one sweep)"), line
