"""`dagster definitions validate` loads the code location whatever launcher and executor are chosen: the
choice is read at run time (launcher) or only imports dagster-k8s (executor), never contacting a cluster."""

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

DAGSTER = Path(sys.executable).parent / "dagster"
VARIANTS = {
    "default": {},
    "k8s": {"SN46_TRAINING_LAUNCHER": "k8s", "SN46_EXECUTOR": "k8s"},
    "ecs": {"SN46_TRAINING_LAUNCHER": "ecs"},
}


def test_definitions_validate_with_each_launcher(tmp_path):
    base = {key: value for key, value in os.environ.items() if not key.startswith("SN46_")}
    # No cluster anywhere: a load-time call to one would fail on these.
    base.update(KUBECONFIG=str(tmp_path / "no-kubeconfig"), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    homes = {name: tmp_path / name for name in VARIANTS}  # one sqlite instance each: they run at once
    for home in homes.values():
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    processes = {
        name: subprocess.Popen(
            [str(DAGSTER), "definitions", "validate", "-m", "sn46_pipelines.definitions"],
            cwd=REPO,
            env={**base, **extra, "DAGSTER_HOME": str(homes[name])},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in VARIANTS.items()
    }
    for name, process in processes.items():
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, f"{name}: {output[-2000:]}"
        assert "All code locations passed validation" in output, name


def test_an_unknown_executor_stops_the_load_with_the_variable_named(tmp_path):
    env = {**os.environ, "SN46_EXECUTOR": "celery"}
    result = subprocess.run(
        [sys.executable, "-c", "import sn46_pipelines.definitions"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert (
        "executor: expected one of multiprocess, k8s, got 'celery' [from variable SN46_EXECUTOR]"
        in result.stderr
    )
