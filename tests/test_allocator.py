"""Arrow's allocator for the pipeline's processes: jemalloc unless the operator chose one.

Arrow reads the choice from the environment a process starts with, so what is tested is the
environment the commands hand on, and what a process started with it (as dagster dev's children
are) ends up using.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

from sn46_pipelines.allocator import ARROW_POOL_VARIABLE, pipeline_allocator, with_pipeline_allocator
from sn46_pipelines.pipeline import environment_for


def _expected() -> str:
    try:
        return pa.jemalloc_memory_pool().backend_name
    except NotImplementedError:
        return "system"


def _operator_environment(**variables: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != ARROW_POOL_VARIABLE}, **variables}


def test_the_pipeline_allocator_is_jemalloc_where_pyarrow_has_it():
    assert pipeline_allocator() == _expected()


def test_a_process_started_with_the_pipeline_environment_allocates_with_it():
    code = (
        "import pyarrow as pa, sn46_pipelines.listings.ingest; print(pa.default_memory_pool().backend_name)"
    )
    environ = with_pipeline_allocator(_operator_environment())
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ
    )
    assert out.stdout.strip() == _expected()


@pytest.mark.parametrize("operator_choice", ["mimalloc", "system"])
def test_an_operators_choice_wins(operator_choice: str):
    environ = _operator_environment(**{ARROW_POOL_VARIABLE: operator_choice})
    assert with_pipeline_allocator(environ)[ARROW_POOL_VARIABLE] == operator_choice


def test_dagster_dev_and_the_daemon_are_handed_it(monkeypatch):
    """``sn46 pipeline ui`` and ``sn46 pipeline run`` start their Dagster processes with environment_for."""
    monkeypatch.delenv(ARROW_POOL_VARIABLE, raising=False)
    assert environment_for(None)[ARROW_POOL_VARIABLE] == _expected()
    assert environment_for("dev")[ARROW_POOL_VARIABLE] == _expected()
    assert ARROW_POOL_VARIABLE not in os.environ  # this process's own variables stay as they were
    monkeypatch.setenv(ARROW_POOL_VARIABLE, "system")
    assert environment_for("dev")[ARROW_POOL_VARIABLE] == "system"
