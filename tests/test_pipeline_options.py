"""``sn46 pipeline run`` options and the ways a pass refuses or gives up, each with its reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sn46_pipelines.cli import build_parser
from sn46_pipelines.pipeline import DAEMON_LOG, PipelineError, configure_dagster_home, run_pipeline


@pytest.mark.parametrize(
    ("value", "reason"), [("0", "at least 1, got 0"), ("soon", "not a whole number: 'soon'")]
)
def test_the_command_refuses_a_bad_timeout(value: str, reason: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["pipeline", "run", "--timeout", value])
    assert exit_info.value.code == 2
    assert f"argument --timeout: {reason}" in capsys.readouterr().err


def test_the_default_gives_a_pass_half_an_hour() -> None:
    assert build_parser().parse_args(["pipeline", "run"]).timeout == 1800


def test_the_local_instance_lives_under_sn46_home_with_the_checkouts_instance_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SN46_HOME", str(tmp_path))
    home = configure_dagster_home()
    assert home == tmp_path / ".dagster_home"
    assert "env:" not in (home / "dagster.yaml").read_text()  # no variable needed to open it


def test_a_pass_that_cannot_settle_in_time_says_so(tmp_path, monkeypatch):
    """A daemon that cannot tick (its workspace names no code location that loads) never settles."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SN46_HOME", str(tmp_path))
    monkeypatch.setenv("SN46_DATA_STORE", f"file://{tmp_path}/data")
    with pytest.raises(PipelineError, match=r"had not settled after 1 s"):
        run_pipeline(timeout=1)


@pytest.mark.slow
def test_a_pass_started_in_the_background_still_stops_its_daemon_with_sigint(tmp_path):
    """A shell starts ``cmd &`` (and ``nohup``) with SIGINT ignored, and the daemon inherits that; it
    still stops on the pass's SIGINT (it installs its own handler), rather than being killed a minute
    later (``sn46 pipeline ui`` has to restore the handler for dagster dev: tests/cli/test_pipeline_ui.py)."""
    (tmp_path / ".sn46" / "local" / "data").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_", "AWS_ENDPOINT"))}
    result = subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", "pipeline", "run", "--timeout", "300"],
        env={**env, "SN46_HOME": str(tmp_path)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    assert "0 runs" in result.stdout
    assert "killed" not in result.stderr
    daemon_log = (tmp_path / ".dagster_home" / DAEMON_LOG).read_text()
    assert "Received interrupt, shutting down daemon threads" in daemon_log


@pytest.mark.parametrize(
    ("value", "reason"), [("0", "at least 1, got 0"), ("1m", "not a whole number: '1m'")]
)
def test_the_ui_refuses_a_bad_stop_timeout(value: str, reason: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["pipeline", "ui", "--stop-timeout", value])
    assert exit_info.value.code == 2
    assert f"argument --stop-timeout: {reason}" in capsys.readouterr().err


def test_the_ui_gives_a_stop_a_minute_by_default() -> None:
    assert build_parser().parse_args(["pipeline", "ui"]).stop_timeout == 60
