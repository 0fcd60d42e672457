"""``--parallel`` / ``run_pipeline(parallel=...)``: bad values stop before anything runs, with the reason."""

from __future__ import annotations

import multiprocessing
import os

import dagster as dg
import pytest

from sn46_pipelines.cli import build_parser
from sn46_pipelines.pipeline import _stop_forkserver, run_pipeline


@pytest.mark.parametrize(("value", "reason"), [("0", "at least 1, got 0"), ("four", "not a whole number: 'four'")])
def test_the_command_refuses_a_bad_count(value: str, reason: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["pipeline", "run", "--parallel", value])
    assert exit_info.value.code == 2
    assert f"argument --parallel: {reason}" in capsys.readouterr().err


def test_the_default_is_one_run_at_a_time() -> None:
    assert build_parser().parse_args(["pipeline", "run"]).parallel == 1


def test_the_library_refuses_a_count_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1 hotkey at a time, got 0"):
        run_pipeline(parallel=0)


def test_parallel_runs_need_an_instance_other_processes_can_open(tmp_path) -> None:
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path)) as instance:
        with pytest.raises(ValueError, match="persistent Dagster instance"):
            run_pipeline(instance, parallel=2)


def test_a_pass_leaves_no_fork_server_holding_an_old_environment(monkeypatch) -> None:
    """A fork server's children get the environment it started with, not the parent's current one."""
    forkserver = multiprocessing.get_context("forkserver")
    monkeypatch.setenv("SN46_PROBE", "first pass")
    with forkserver.Pool(1) as pool:
        assert pool.apply(os.getenv, ("SN46_PROBE",)) == "first pass"
    monkeypatch.setenv("SN46_PROBE", "second pass")
    with forkserver.Pool(1) as pool:  # the same server: still the first pass's variables
        assert pool.apply(os.getenv, ("SN46_PROBE",)) == "first pass"
    _stop_forkserver()  # what run_pipeline does after a parallel pass
    with forkserver.Pool(1) as pool:
        assert pool.apply(os.getenv, ("SN46_PROBE",)) == "second pass"
    _stop_forkserver()
