"""`sn46 pipeline ui`'s last resort: what does not stop on Ctrl-C is killed, and its runs are failed.

``dagster dev`` itself stops on the SIGINT the command sends its group (tests/cli/test_pipeline_ui.py,
even with runs hanging on a dead store). Here a stand-in that ignores SIGINT, with a child that does too,
plays a deployment that will not stop: the fault this path exists for.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import dagster as dg
import psutil

#: A "dagster dev" that ignores SIGINT and starts a child that ignores it too, then says which.
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    child.stdout.readline()
    print("ready", child.pid, flush=True)
    time.sleep(600)
    """
)

#: The command's side: start the stand-in in a group of its own, as `sn46 pipeline ui` starts dagster dev.
COMMAND = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    from sn46_pipelines.cli.pipeline import serve_until_stopped
    with subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True) as dev:
        sys.exit(serve_until_stopped(dev, float(sys.argv[2]), Path(sys.argv[3])))
    """
)


def test_what_ignores_the_stop_is_killed_after_the_grace_period_and_its_runs_fail(tmp_path):
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        run = instance.add_run(dg.DagsterRun(job_name="ingest_job", status=dg.DagsterRunStatus.STARTED))
        done = instance.add_run(dg.DagsterRun(job_name="ingest_job", status=dg.DagsterRunStatus.SUCCESS))
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND, STUBBORN, "2", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, child_pid = command.stdout.readline().split()
        assert ready == "ready"
        child = psutil.Process(int(child_pid))
        command.send_signal(signal.SIGTERM)
        _, stderr = command.communicate(timeout=60)
        assert command.returncode == 1
        assert "had not stopped 2 s after the signal" in stderr
        assert f"marked the 1 run(s) they left in flight as failed ({run.run_id})" in stderr
        assert not psutil.wait_procs([child], timeout=10)[1]  # the child went with its parent's group
    finally:  # a failed test leaves nothing behind
        for process in psutil.Process(command.pid).children(recursive=True) if command.poll() is None else []:
            process.kill()
        command.kill()
        command.wait()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.SUCCESS
