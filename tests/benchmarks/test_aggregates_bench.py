"""The aggregates benchmark runs end to end at a small size, and its pandas reference agrees with DuckDB.

The reference re-implements the scoring in pandas; when the scoring changes and the reference does
not, the benchmark compares two different things. Running it here keeps the two in step.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO


@pytest.mark.slow
def test_the_benchmark_runs_and_both_engines_agree(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "aggregates_bench.py"),
            "--rows",
            "20000",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "20,000 curated rows" in out
    assert "results agree: yes" in out, out
