"""The documented local command, `sn46 pipeline ui`, running by itself on the sqlite instance.

Nobody presses a button: demo uploads land in the local data store, and the
test watches the UI's GraphQL until the views are built.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.objectstore import open_store
from tests.support.live_dagster import free_port, ingest_counts, location_loaded, views_built_after, wait_for

pytestmark = pytest.mark.slow


def start_ui(home: Path) -> tuple[int, subprocess.Popen[bytes], Path]:
    """``sn46 pipeline ui`` on ``home`` and a free port, logging to ``home/ui.log``.

    It runs in a process group of its own, so a test can signal the whole
    deployment, or see what is left of it.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env["SN46_HOME"] = str(home)
    log = home / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(
            [sys.executable, "-m", "sn46_pipelines.cli", "pipeline", "ui", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return port, ui, log


def test_uploads_become_views_under_sn46_pipeline_ui(tmp_path):
    port, ui, log = start_ui(tmp_path)
    processes = {"sn46 pipeline ui": ui}
    try:
        loaded = location_loaded(port, "sn46_pipelines")
        wait_for(loaded, "the UI loads the code", processes, log.read_text, 180)
        landed = time.time()
        store = open_store(f"file://{tmp_path}/.sn46/local/data")
        report = seed_demo(store, miners=3, validators=1, seed=5)
        wait_for(
            views_built_after(port, landed), "views built from the uploads", processes, log.read_text, 400
        )
        counts = ingest_counts(port)
        assert {miner.hotkey: len(miner.files) for miner in report.miners} == dict(counts)
    finally:
        os.killpg(ui.pid, signal.SIGINT)  # dagster dev stops cleanly on Ctrl-C
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


def test_a_sigterm_to_the_command_stops_the_whole_deployment(tmp_path):
    """``kill`` (or a supervisor) signals ``sn46 pipeline ui`` alone; dagster dev and its children follow."""
    port, ui, log = start_ui(tmp_path)

    def group_gone() -> bool:
        try:
            os.killpg(ui.pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        loaded = location_loaded(port, "sn46_pipelines")
        wait_for(loaded, "the UI loads the code", {"sn46 pipeline ui": ui}, log.read_text, 180)
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=120) is not None
        wait_for(group_gone, "dagster dev, its daemon and webserver exit", {}, log.read_text, 60)
    finally:
        if not group_gone():
            os.killpg(ui.pid, signal.SIGKILL)
