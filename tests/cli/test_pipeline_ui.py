"""The documented local command, `sn46 pipeline ui`, running by itself on the sqlite instance.

Nobody presses a button: demo uploads land in the local data store, and the
test watches the UI's GraphQL until the views are built.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from sn46_pipelines.allocator import ARROW_POOL_VARIABLE, pipeline_allocator
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.objectstore import open_store
from tests.support.live_dagster import (
    free_port,
    ingest_counts,
    location_loaded,
    runs_with_status,
    views_built_after,
    wait_for,
)
from tests.support.stall import StallingRelay

STARTING, STARTED, CANCELING = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)

pytestmark = pytest.mark.slow


def start_ui(
    home: Path, *options: str, background: bool = False, **variables: str
) -> tuple[int, subprocess.Popen[bytes], Path]:
    """``sn46 pipeline ui`` on ``home`` and a free port, logging to ``home/ui.log``.

    ``options`` are added to the command line, ``variables`` to its environment.
    It runs in a process group of its own, so a test can signal the whole
    deployment, or see what is left of it. ``background`` starts it as a shell
    starts ``cmd &`` or ``nohup cmd &``: with SIGINT ignored.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env.update(SN46_HOME=str(home), **variables)
    log = home / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(
            [sys.executable, "-m", "sn46_pipelines.cli", "pipeline", "ui", "--port", str(port), *options],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None,
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
    """``kill`` (or a supervisor) signals ``sn46 pipeline ui`` alone; dagster dev and its children follow.

    Started in the background, as a script or ``nohup`` would: with SIGINT ignored, which
    dagster dev would inherit and then ignore the stop the command sends it.
    """
    port, ui, log = start_ui(tmp_path, background=True)
    deployment: list[psutil.Process] = []
    try:
        loaded = location_loaded(port, "sn46_pipelines")
        wait_for(loaded, "the UI loads the code", {"sn46 pipeline ui": ui}, log.read_text, 180)
        deployment = psutil.Process(ui.pid).children(recursive=True)
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=120) == 0, log.read_text()
        assert not psutil.wait_procs(deployment, timeout=30)[1], log.read_text()
        assert "killed" not in log.read_text()  # it stopped by itself: nothing needed killing
    finally:
        _kill(ui, deployment)


def test_a_sigterm_while_runs_hang_on_a_dead_store_stops_everything_in_bounded_time(
    tmp_path, s3_bucket, moto_endpoint
):
    """The data store stops answering with ingest runs in flight, then the operator stops the UI.

    Every request of those runs (and of the upload sensor) now waits on a
    socket the S3 client retries for minutes. ``sn46 pipeline ui`` still
    returns within its ``--stop-timeout`` (plus the kill), leaves no process
    of the deployment behind, and no run marked as still running: a run left
    STARTED would hold a concurrency slot when the UI starts again.
    """
    grace = 15
    store_url = f"s3://{s3_bucket}/store"
    with StallingRelay(int(moto_endpoint.rsplit(":", 1)[1])) as relay:
        port, ui, log = start_ui(
            tmp_path, "--stop-timeout", str(grace), SN46_DATA_STORE=store_url, AWS_ENDPOINT_URL=relay.url
        )
        processes = {"sn46 pipeline ui": ui}
        deployment: list[psutil.Process] = []
        try:
            wait_for(
                location_loaded(port, "sn46_pipelines"),
                "the UI loads the code",
                processes,
                log.read_text,
                180,
            )
            seed_demo(open_store(store_url), miners=6, validators=1, seed=5)  # straight to the server
            wait_for(runs_with_status(port, "STARTED"), "ingest runs start", processes, log.read_text, 240)
            relay.stall()
            # From here on a run that is STARTED cannot finish: it is in flight on a dead store.
            wait_for(runs_with_status(port, "STARTED"), "a run in flight", processes, log.read_text, 120)
            deployment = psutil.Process(ui.pid).children(recursive=True)
            # dagster dev, its daemon, webserver and code server, and the run workers in flight:
            # each allocates as the pipeline's processes should (sn46_pipelines.allocator).
            assert any("multiprocessing.spawn" in " ".join(p.cmdline()) for p in deployment)  # runs, steps
            assert {p.environ().get(ARROW_POOL_VARIABLE) for p in deployment} == {pipeline_allocator()}
            ui.send_signal(signal.SIGTERM)
            assert ui.wait(timeout=grace + 60) is not None, log.read_text()
            assert not psutil.wait_procs(deployment, timeout=10)[1], log.read_text()
        finally:
            _kill(ui, deployment)
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster_home")) as instance:
        runs = instance.get_runs()
        left = [r.run_id for r in runs if r.status in (STARTING, STARTED, CANCELING)]
    assert runs and not left, f"runs left in flight: {left}\n{log.read_text()}"


def _kill(ui: subprocess.Popen[bytes], deployment: list[psutil.Process]) -> None:
    """What a failed test leaves running: the command and every process it had started."""
    for process in [*deployment, psutil.Process(ui.pid) if ui.poll() is None else None]:
        if process is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    ui.wait()
