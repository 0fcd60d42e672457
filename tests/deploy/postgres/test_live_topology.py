"""The production topology running by itself: code server, daemon and webserver as separate processes.

PostgreSQL holds the instance (``deploy/dagster.prod.yaml``), moto's S3 server
the stores and the step logs. Nobody launches anything: uploads land, and the
test only watches the webserver's GraphQL until the views are rebuilt. Then
the daemon is SIGKILLed while ingest runs are in flight, started again, and a
second round of uploads lands: every upload is ingested exactly once and the
views are rebuilt again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.discovery import list_hotkey_uploads
from sn46_pipelines.listings.ingest import read_manifest
from sn46_pipelines.objectstore import open_store
from tests.deploy.postgres.prod_home_helpers import make_prod_home
from tests.support.live_dagster import (
    RUNS,
    free_port,
    graphql,
    ingest_counts,
    location_loaded,
    views_built_after,
    wait_for,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
#: Seconds the deployment may take to turn one round of uploads into views, on two busy cores.
ROUND_LIMIT = 420
#: A daemon killed after it marked a queued run STARTING but before the code server took the
#: launch leaves that run STARTING: nothing will ever run it. Run monitoring fails it once
#: ``start_timeout_seconds`` pass and ``run_retries`` launches it again, which in production
#: takes up to ten minutes; here the same path is given one minute, polled every 10 s.
RUN_MONITORING = {"start_timeout_seconds": 60, "poll_interval_seconds": 10}


class Deployment:
    """The three processes, started and stopped as an operator's process manager would."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.grpc_port, self.web_port = free_port(), free_port()
        self.workspace = folder / "workspace.yaml"
        self.workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {self.grpc_port}\n      location_name: sn46_pipelines\n"
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        commands = {
            "code-server": [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "sn46_pipelines.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.grpc_port),
                "--location-name",
                "sn46_pipelines",
            ],
            "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
            "webserver": [
                str(BIN / "dagster-webserver"),
                "-w",
                str(self.workspace),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.web_port),
            ],
        }
        with open(self.folder / f"{name}.log", "ab") as log:  # the process keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                commands[name],
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def code_server_serving(self) -> bool:
        """``dagster api grpc-health-check``: the code server is up and answers."""
        check = [
            str(BIN / "dagster"),
            "api",
            "grpc-health-check",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.grpc_port),
        ]
        return subprocess.run(check, env=self.env, capture_output=True, check=False).returncode == 0

    def kill(self, name: str) -> None:
        """SIGKILL, no chance to clean up: what a node failure does."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            process = self.processes.pop(name, None)
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.web_port, query, **variables)

    def wait_for(self, condition: Callable[[], Any], what: str, limit: float = ROUND_LIMIT) -> Any:
        return wait_for(condition, what, self.processes, self.log_tail, limit)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log")))


@pytest.fixture
def deployment(postgres, moto_endpoint, tmp_path) -> Iterator[tuple[Deployment, Any]]:
    prod = make_prod_home(postgres, moto_endpoint, tmp_path, run_monitoring=RUN_MONITORING)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"sn46-live-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))},
        **prod.env,
        "SN46_HOME": str(tmp_path),
        "SN46_DATA_STORE": f"s3://{bucket}/data-store",
        "SN46_MODEL_STORE": f"s3://{bucket}/models",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    live = Deployment(tmp_path, env)
    try:
        # The code server first, serving, so the daemon and webserver find it on their first try.
        live.start("code-server")
        live.wait_for(live.code_server_serving, "the code server answers its health check", limit=180)
        live.start("daemon")
        live.start("webserver")
        live.wait_for(
            location_loaded(live.web_port, "sn46_pipelines"), "the webserver loads the code", limit=180
        )
        yield live, open_store(env["SN46_DATA_STORE"], endpoint_url=moto_endpoint, region="us-east-1")
    finally:
        live.stop()


def test_uploads_flow_to_views_by_themselves_and_survive_a_killed_daemon(deployment):
    live, store = deployment

    first = time.time()
    seed_demo(store, miners=4, validators=1, seed=3, now=NOW)
    live.wait_for(views_built_after(live.web_port, first), "views rebuilt after the first round")

    second = time.time()
    report = seed_demo(store, miners=6, validators=1, seed=4, now=NOW + timedelta(hours=2))

    def ingests_in_flight() -> bool:
        runs = live.graphql(RUNS, statuses=["STARTING", "STARTED"])["runsOrError"]["results"]
        return any(run["jobName"] == "ingest_job" for run in runs)

    live.wait_for(ingests_in_flight, "ingest runs of the second round in flight")
    live.kill("daemon")
    live.start("daemon")
    live.wait_for(views_built_after(live.web_port, second), "views rebuilt after the second round")

    counts = ingest_counts(live.web_port)
    for miner in report.miners:
        uploads = {info.key for info in list_hotkey_uploads(store, miner.hotkey)}
        processed = set(read_manifest(store, miner.hotkey).processed)
        assert processed == uploads, miner.hotkey  # none missing
        assert counts[miner.hotkey] == len(uploads), miner.hotkey  # none processed twice
