"""The ``sn46`` command: fast help, and one clear line with exit code 2 for unusable stores."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO


def sn46(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from sn46_pipelines.cli import build_parser; build_parser().format_help();"
        "print(sorted(m for m in ('dagster', 'torch', 'pyarrow', 'duckdb', 'bittensor', 'boto3')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [[], ["demo", "--help"], ["store", "--help"], ["pipeline", "--help"]])
def test_help_lists_the_subcommands(command):
    out = sn46(*(command or ["--help"]))
    assert out.returncode == 0, out.stderr
    assert "usage: sn46" in out.stdout


def test_a_group_without_its_subcommand_prints_help_and_exits_2():
    out = sn46("pipeline")
    assert out.returncode == 2 and "usage: sn46 pipeline" in out.stderr


def one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("sn46: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_unknown_store_scheme(tmp_path):
    one_line_error(sn46("demo", "seed", "--store", "ftp://host/x"), "ftp://host/x", "unknown store scheme")


def test_missing_bucket_writes_nothing(moto_endpoint):
    out = sn46("demo", "seed", "--store", "s3://no-such-bucket-sn46/x")
    one_line_error(out, "s3://no-such-bucket-sn46/x", "bucket does not exist")


def test_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    one_line_error(
        sn46("demo", "seed", "--store", f"file://{blocker}/store"), f"file://{blocker}/store", "cannot create"
    )


def test_bad_environment_configuration():
    one_line_error(sn46("config", env={"SN46_ENV": "qa"}), "unknown environment 'qa'")
    one_line_error(sn46("config", env={"SN46_DATA_STORE": "bucket-without-scheme"}), "SN46_DATA_STORE")


def test_config_prints_the_resolved_environment():
    out = sn46("--env", "prod", "config", "--json")
    assert out.returncode == 0, out.stderr
    settings = json.loads(out.stdout)
    assert settings["env"] == "prod"
    assert settings["data_store"] == "s3://4000-resilabs-prod-bittensor-sn46-datacollection"


def test_env_selects_the_settings_without_changing_this_process_s_variables(monkeypatch, capsys):
    """``--env`` is handed to what the command loads and starts; the caller's SN46_ENV is left alone."""
    from sn46_pipelines.cli import main
    from sn46_pipelines.pipeline import environment_for

    monkeypatch.setenv("SN46_ENV", "dev")
    assert main(["--env", "prod", "config", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["env"] == "prod"
    assert os.environ["SN46_ENV"] == "dev"
    assert main(["config", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["env"] == "dev"
    # The daemon or `dagster dev` a pass starts gets the named environment; without one, the caller's.
    assert environment_for("staging")["SN46_ENV"] == "staging"
    assert environment_for(None)["SN46_ENV"] == "dev"
    assert os.environ["SN46_ENV"] == "dev"


def test_the_gateway_workers_see_the_named_environment_while_they_serve(monkeypatch):
    from sn46_pipelines.cli.gateway import _worker_variables

    monkeypatch.delenv("SN46_ENV", raising=False)
    with _worker_variables("staging"):
        assert os.environ["SN46_ENV"] == "staging"
    assert "SN46_ENV" not in os.environ
    monkeypatch.setenv("SN46_ENV", "dev")
    with _worker_variables(None):
        assert os.environ["SN46_ENV"] == "dev"
    with _worker_variables("prod"):
        assert os.environ["SN46_ENV"] == "prod"
    assert os.environ["SN46_ENV"] == "dev"


@pytest.mark.parametrize(
    "target", [["-w", "workspace.yaml"], ["-m", "sn46_pipelines.definitions"]], ids=["w", "m"]
)
def test_dagster_definitions_validate_in_the_project_root_with_no_variable_set(target):
    """What a Dagster user types first: no DAGSTER_HOME, no SN46_* variable, the checkout as working
    folder."""
    root = str(REPO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", *target],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All code locations passed validation" in out.stdout + out.stderr


def test_dagster_asset_materialize_in_the_project_root_with_no_dagster_home(tmp_path):
    """`dagster asset materialize` on a temporary instance; SN46_HOME only keeps the stores out of
    the checkout."""
    root = str(REPO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env["SN46_HOME"] = str(tmp_path)
    assert sn46("demo", "seed", env=env).returncode == 0
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "--select",
            "listing_aggregates",
            "-m",
            "sn46_pipelines.definitions",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "RUN_SUCCESS" in out.stdout + out.stderr
    assert (tmp_path / ".sn46" / "local" / "data" / "aggregates").is_dir()


def test_the_readme_main_job_runs_on_the_local_default(tmp_path):
    """`sn46 demo`: seed the local data store, ingest every miner, all on folders and sqlite."""
    env = {"SN46_HOME": str(tmp_path)}
    out = sn46("demo", "--json", env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    seeded = {m["hotkey"]: m for m in doc["seed"]["miners"]}
    summary = doc["pipeline"]
    assert summary["ok"] and set(summary["hotkeys"]) == set(seeded)
    for hotkey, stats in summary["hotkeys"].items():
        rejected = {
            k.removeprefix("rejected_"): v for k, v in stats.items() if k.startswith("rejected_") and v
        }
        assert rejected == seeded[hotkey]["expected"], hotkey
    # Everything after ingest ran by itself: the automation sensors requested it.
    assert {"listing_aggregates", "validator_views", "price_model", "inference_pin"} <= set(
        summary["downstream"]
    )
    assert summary["downstream"]["inference_pin"]["moved"] is True
    assert (tmp_path / ".sn46" / "local" / "data" / "metagraph.json").exists()
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()


def test_store_stats_in_prometheus_text_format(tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.pt").write_bytes(b"weights" * 100)
    url = f"file://{tmp_path}/models"
    for i in range(2):
        (checkpoint / "model.pt").write_bytes(b"weights %d" % i * 100)
        assert sn46("store", "--store", url, "commit", str(checkpoint), "--message", f"v{i}").returncode == 0
    gc = sn46("store", "--store", url, "gc", "--keep-versions", "1", "--keep-min-versions", "1", "--json")
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["collected"] == [0]
    out = sn46("store", "--store", url, "stats", "--prometheus")
    assert out.returncode == 0, out.stderr
    samples = {}
    for line in out.stdout.splitlines():
        if line and not line.startswith("#"):
            name_and_labels, value = line.rsplit(" ", 1)
            samples[name_and_labels] = float(value)
    assert samples[f'sn46_modelstore_commits_total{{store="{url}"}}'] == 2
    assert samples[f'sn46_modelstore_version_count{{store="{url}",state="live"}}'] == 1
    assert samples[f'sn46_modelstore_version_count{{store="{url}",state="collected"}}'] == 1
    assert samples[f'sn46_modelstore_gc_versions_deleted_total{{store="{url}"}}'] == 1
    assert 0 < samples[f'sn46_modelstore_gc_run_duration_seconds{{store="{url}"}}'] < 60


def test_pipeline_ui_serves_the_project_and_stops_on_ctrl_c(tmp_path):
    """`sn46 pipeline ui` runs `dagster dev` on this checkout's workspace, with SN46_HOME's instance."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sn46_pipelines.cli", "pipeline", "ui", "--port", str(port)],
        env={**os.environ, "SN46_HOME": str(tmp_path)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        info = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and info is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
                    info = json.loads(answer.read())
            except OSError:
                time.sleep(1)
        assert info is not None and info["dagster_version"], "the UI did not come up"
        assert (tmp_path / ".dagster_home").is_dir()  # the instance lives under SN46_HOME
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        assert proc.wait(timeout=60) is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # none left: the group is gone
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived their parent


def test_demo_rounds_reach_a_steady_state(tmp_path):
    """`sn46 demo --rounds 2`: the same miners upload their homes again; the second pass is as good
    as the first."""
    env = {"SN46_HOME": str(tmp_path)}
    out = sn46("demo", "--rounds", "2", "--miners", "4", "--json", env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    decoder, text, docs = json.JSONDecoder(), out.stdout.strip(), []
    while text:
        doc, end = decoder.raw_decode(text)
        docs.append(doc)
        text = text[end:].strip()
    assert [doc["round"] for doc in docs] == [0, 1]
    first, second = (doc["pipeline"] for doc in docs)
    assert first["ok"] and second["ok"]
    assert (
        second["downstream"]["listing_aggregates"]["passed"]
        >= first["downstream"]["listing_aggregates"]["passed"]
    )
    assert "price_model" in second["downstream"]  # trained again on the re-observed homes, no failure
