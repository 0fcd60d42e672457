"""Live Dagster deployments for the tests: real processes, started in the order an operator's
process manager uses, and watched only from outside, through the webserver's GraphQL.

The webserver and the daemon load the workspace once at start: one started
before its gRPC code server answers keeps the location as a load error. So a
production start waits for the code server's health check (the probe the
Compose file's ``depends_on`` uses) before it starts the other two, and every
test waits for the webserver to report the location loaded before it seeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from live_dagster import MATERIALIZED, RUNS, free_port, graphql, wait_for

from sn46_pipelines.listings.discovery import list_hotkey_uploads
from sn46_pipelines.listings.ingest import processed_files
from sn46_pipelines.objectstore import ObjectStore

BIN = Path(sys.executable).parent
LOCATION = "sn46_pipelines"
RUN_START = "query ($id: ID!) { runOrError(runId: $id) { ... on Run { startTime } } }"
LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
#: Seconds a deployment may take to start, or to turn one round of uploads into views, on two busy
#: cores. A bound on a wait, never a timing assertion: a healthy run settles far sooner.
START_LIMIT = 180
ROUND_LIMIT = 300


def location_loaded(port: int) -> bool:
    """Whether the webserver has loaded the code location; a load error fails the test at once."""
    entries = graphql(port, LOCATIONS)["workspaceOrError"]["locationEntries"]
    for entry in entries:
        loaded = entry["locationOrLoadError"]
        if loaded is not None and loaded["__typename"] == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {loaded['message']}")
    return any(
        e["name"] == LOCATION and e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries
    )


def latest_materialization(port: int, asset: str) -> tuple[float, str] | None:
    """(seconds since the epoch, run id) of ``asset``'s latest materialization, any partition."""
    [node] = graphql(port, MATERIALIZED, key=[asset])["assetNodes"]
    events = node["assetMaterializations"]
    return (float(events[0]["timestamp"]) / 1000, events[0]["runId"]) if events else None


def views_include_uploads(port: int, store: ObjectStore, hotkeys: list[str]) -> Callable[[], bool]:
    """Whether every upload of ``hotkeys`` is ingested and the views are built from it, with nothing left to run.

    Built from it: the latest ``listing_aggregates`` run started after the
    latest ``miner_listings`` materialization, and ``validator_views``
    materialized after that aggregates run.
    """

    def settled() -> bool:
        for hotkey in hotkeys:
            if {u.key for u in list_hotkey_uploads(store, hotkey)} != processed_files(store, hotkey):
                return False
        ingested, aggregated, viewed = (
            latest_materialization(port, asset)
            for asset in ("miner_listings", "listing_aggregates", "validator_views")
        )
        if ingested is None or aggregated is None or viewed is None:
            return False
        started = graphql(port, RUN_START, id=aggregated[1])["runOrError"]["startTime"]
        return (
            started > ingested[0]
            and viewed[0] > aggregated[0]
            and not runs(port, "QUEUED", "STARTING", "STARTED")
        )

    return settled


def runs(port: int, *statuses: str) -> list[dict[str, Any]]:
    """Runs in one of ``statuses`` (every run when none is given)."""
    return graphql(port, RUNS, statuses=list(statuses) or None)["runsOrError"]["results"]


def stop_group(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Ctrl-C to the process group, as a terminal would (Dagster's servers stop cleanly on SIGINT only);
    SIGKILL if it is still there after ``timeout``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of ``process``'s group (its children included) still exists."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


class ProductionTopology:
    """``dagster code-server start``, ``dagster-daemon run`` and ``dagster-webserver`` as separate processes.

    The webserver and the daemon find the code server through a ``grpc_server``
    workspace, as in the Compose, ECS and Helm set-ups.
    """

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.grpc_port, self.web_port = free_port(), free_port()
        self.workspace = folder / "workspace.yaml"
        self.workspace.write_text(
            f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {self.grpc_port}\n"
            f"      location_name: {LOCATION}\n"
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _command(self, name: str) -> list[str]:
        if name == "code-server":
            return [
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
                LOCATION,
            ]
        if name == "daemon":
            return [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)]
        return [
            str(BIN / "dagster-webserver"),
            "-w",
            str(self.workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.web_port),
        ]

    def start(self, name: str) -> None:
        """Start one process in its own session, its output appended to ``<name>.log``."""
        with open(self.folder / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                self._command(name),
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_all(self) -> None:
        """Code server first, the others once it answers its health check; return when the UI has it loaded."""
        self.start("code-server")
        self.wait_for(self._code_server_healthy, "the code server answers its gRPC health check", START_LIMIT)
        self.start("daemon")
        self.start("webserver")
        self.wait_for(
            lambda: location_loaded(self.web_port), "the webserver loads the code location", START_LIMIT
        )

    def _code_server_healthy(self) -> bool:
        probe = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.grpc_port)]
        return subprocess.run(probe, env=self.env, capture_output=True, check=False).returncode == 0

    def kill(self, name: str) -> None:
        """SIGKILL, no chance to clean up: what a node failure or the OOM killer does."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            if (process := self.processes.pop(name, None)) is not None:
                stop_group(process)

    def wait_for(self, condition: Callable[[], Any], what: str, limit: float = ROUND_LIMIT) -> Any:
        return wait_for(condition, what, self.processes, self.log_tail, limit)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log")))


@contextmanager
def local_ui(home: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Callable[[], str]]]:
    """``sn46 pipeline ui --port P`` on a fresh ``SN46_HOME``, as the README starts it; stopped with Ctrl-C.

    Yields the port once the UI has loaded the code location, the process and a
    reader of its log.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env["SN46_HOME"] = str(home)
    log = home / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(
            [str(BIN / "sn46"), "pipeline", "ui", "--port", str(port)],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: location_loaded(port),
            "the UI loads the code location",
            {"sn46 pipeline ui": ui},
            log.read_text,
            START_LIMIT,
        )
        yield port, ui, log.read_text
    finally:
        stop_group(ui)
