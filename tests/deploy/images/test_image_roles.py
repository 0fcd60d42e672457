"""Every role of the image's entrypoint starts its real server here and passes the image's own health probe.

The project's virtualenv stands in for the image's /opt/venv (no Docker engine runs on this machine):
the same script, the same commands and the same probes the Dockerfile's HEALTHCHECK and the compose
file's health checks run. Each probe is also seen failing while its server is not ready, so a probe that
always passed could not hide here.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.deploy.images.deploy_images_helpers import (
    REPO,
    ROLES,
    RoleServer,
    entrypoint,
    entrypoint_env,
    free_port,
)

WORKSPACE = REPO / "deploy" / "workspace.compose.yaml"


def test_help_names_every_role_and_no_arguments_is_a_usage_error(tmp_path):
    env = entrypoint_env(tmp_path)
    shown = entrypoint("--help", env=env)
    assert shown.returncode == 0
    for role in ROLES:
        assert f"  {role} " in shown.stdout
    bare = entrypoint(env=env)
    assert bare.returncode == 64 and "sn46-entrypoint ROLE" in bare.stderr


def test_print_shows_each_role_command_with_its_port_and_extra_arguments(tmp_path):
    env = entrypoint_env(tmp_path, SN46_PORT="4100", DAGSTER_HOME="/opt/dagster/home")
    printed = {role: entrypoint("--print", role, "--extra", env=env).stdout.splitlines() for role in ROLES}
    assert printed["code-location"] == [
        "dagster",
        "code-server",
        "start",
        "-h",
        "127.0.0.1",
        "-p",
        "4100",
        "-m",
        "sn46_pipelines.definitions",
        "--extra",
    ]
    assert printed["webserver"] == [
        "dagster-webserver",
        "-h",
        "127.0.0.1",
        "-p",
        "4100",
        "-w",
        "/opt/dagster/home/workspace.yaml",
        "--extra",
    ]
    assert printed["daemon"] == ["dagster-daemon", "run", "-w", "/opt/dagster/home/workspace.yaml", "--extra"]
    assert printed["gateway"] == [
        "python",
        "-m",
        "sn46_pipelines.gateway",
        "--host",
        "127.0.0.1",
        "--port",
        "4100",
        "--extra",
    ]
    assert printed["inference"] == ["sn46", "serve", "--host", "127.0.0.1", "--port", "4100", "--extra"]
    for argv in printed.values():
        assert shutil.which(argv[0], path=env["PATH"]), f"{argv[0]} is not installed"
    unknown = entrypoint("--print", "scheduler", env=env)
    assert unknown.returncode == 64 and "name a role" in unknown.stderr


def test_any_other_command_runs_as_given_and_leaves_nothing_to_probe(tmp_path):
    env = entrypoint_env(
        tmp_path, SN46_ENV="dev", SN46_SECRETS_SOURCE="env", SN46_DATA_STORE="s3://sn46-data"
    )
    Path(env["SN46_ROLE_FILE"]).write_text("gateway\n")  # left by an earlier server in the same container
    config = entrypoint("sn46", "config", "--json", env=env)
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["data_store"] == "s3://sn46-data"
    assert not Path(env["SN46_ROLE_FILE"]).exists()
    probe = entrypoint("health", env=env)
    assert probe.returncode == 0 and "nothing to probe" in probe.stderr
    unknown = entrypoint("health", "scheduler", env=env)
    assert unknown.returncode == 64 and "unknown role" in unknown.stderr


def test_code_location_webserver_and_daemon_serve_the_compose_workspace(tmp_path):
    """The webserver and daemon load no code: they reach the code location through workspace.compose.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {tmp_path / 'storage'}\ntelemetry:\n  enabled: false\n"
    )
    grpc_port, ui_port = free_port(), free_port()
    shared = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_WORKSPACE": str(WORKSPACE),
        "DAGSTER_CODE_LOCATION_HOST": "127.0.0.1",
        "DAGSTER_CODE_LOCATION_PORT": str(grpc_port),
    }
    env = {name: entrypoint_env(tmp_path / name, **shared) for name in ("code", "ui", "daemon")}
    for path in env.values():
        Path(path["SN46_ROLE_FILE"]).parent.mkdir()
    env["code"]["SN46_PORT"] = str(grpc_port)
    env["ui"]["SN46_PORT"] = str(ui_port)
    assert entrypoint("health", "code-location", env=env["code"]).returncode != 0, "nothing listens yet"

    with RoleServer("code-location", env["code"], tmp_path / "code.log") as code:
        code.wait_healthy()
        assert Path(env["code"]["SN46_ROLE_FILE"]).read_text().strip() == "code-location"
        with (
            RoleServer("webserver", env["ui"], tmp_path / "ui.log") as ui,
            RoleServer("daemon", env["daemon"], tmp_path / "daemon.log") as daemon,
        ):
            ui.wait_healthy()
            locations = _graphql(
                ui_port,
                "{ workspaceOrError { ... on Workspace { locationEntries { name "
                "locationOrLoadError { __typename ... on RepositoryLocation { repositories { "
                "jobs { name } } } } } } } }",
            )
            (entry,) = locations["workspaceOrError"]["locationEntries"]
            assert entry["name"] == "sn46_pipelines"
            assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
            jobs = {
                job["name"] for repo in entry["locationOrLoadError"]["repositories"] for job in repo["jobs"]
            }
            assert {"ingest_job", "train_job", "gc_job"} <= jobs
            assert daemon.wait_healthy().stdout.strip() == "Daemon live"
            # docs/images.md starts the upload sensor this way, through the entrypoint's pass-through.
            started = entrypoint(
                "dagster", "sensor", "start", "miner_upload_sensor", "-w", str(WORKSPACE), env=env["ui"]
            )
            assert started.returncode == 0 and "Started sensor miner_upload_sensor" in started.stdout, started


def test_gateway_is_healthy_with_s3_a_ledger_and_a_metagraph(tmp_path, s3_bucket, moto_endpoint):
    seed = entrypoint(
        "sn46",
        "demo",
        "seed",
        "--store",
        f"file://{tmp_path / 'seed'}",
        "--miners",
        "2",
        env=entrypoint_env(tmp_path),
    )
    assert seed.returncode == 0, seed.stderr
    port = free_port()
    env = entrypoint_env(
        tmp_path,
        SN46_PORT=str(port),
        SN46_ENV="dev",
        SN46_SECRETS_SOURCE="env",
        SN46_DATA_STORE=f"s3://{s3_bucket}",
        AWS_ENDPOINT_URL=moto_endpoint,
        SN46_METAGRAPH_FILE=str(tmp_path / "seed" / "metagraph.json"),
    )
    with RoleServer("gateway", env, tmp_path / "gateway.log") as gateway:
        gateway.wait_healthy()
        body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=10))
        assert body["status"] == "ok" and body["bucket"] == s3_bucket and body["metagraph"]["loaded"]


def test_inference_turns_healthy_once_a_model_version_is_committed(tmp_path):
    from sn46_pipelines.modelstore import ModelStore
    from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
    from sn46_pipelines.pricemodel.train import TrainConfig, train

    store_url = f"file://{tmp_path / 'models'}"
    models = ModelStore.open(store_url)
    port = free_port()
    env = entrypoint_env(tmp_path, SN46_PORT=str(port))
    with RoleServer(
        "inference",
        env,
        tmp_path / "inference.log",
        "--store",
        store_url,
        "--version",
        "head",
        "--poll-interval",
        "0.5",
    ) as inference:
        assert _status(port, "/health", inference) == 503, "up, with no model yet"
        assert inference.health().returncode != 0
        commit_checkpoint(
            models,
            train(_listings(), TrainConfig(epochs=2, hidden=16, batch_size=128)),
            tmp_path / "checkpoint",
        )
        inference.wait_healthy(timeout=60)
        assert _status(port, "/health", inference) == 200


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    body = json.load(urllib.request.urlopen(request, timeout=30))
    assert "errors" not in body, body
    return body["data"]


def _status(port: int, path: str, server: RoleServer, timeout: float = 60) -> int:
    """The HTTP status of ``path`` once the server answers at all."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{server.role} did not answer on {path}:\n{server.output()}")
            time.sleep(0.5)


def _listings():
    """Demo listings for every demo zip code: enough for a small model to load and serve."""
    import numpy as np
    import pyarrow as pa

    from sn46_pipelines.demo.listings import synth_listings
    from sn46_pipelines.demo.places import PLACES

    rng = np.random.default_rng(0)
    newest = datetime(2026, 11, 20, tzinfo=UTC)
    return pa.concat_tables(
        [
            synth_listings(rng, place, np.arange(i * 1000, i * 1000 + 60) + 1, newest=newest)
            for i, place in enumerate(PLACES)
        ]
    )
