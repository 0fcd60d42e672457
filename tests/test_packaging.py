"""The wheel a user installs carries what the package needs at run time: environment files and py.typed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO

ENVIRONMENTS = ("local", "dev", "test", "staging", "prod")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so the build's own folders never land in the checkout."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "sn46_pipelines", source / "sn46_pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("sn46_pipelines-*.whl")
    return built


def test_the_wheel_ships_every_environment_file_and_the_typing_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sn46_pipelines/environments/{env}.yaml" for env in ENVIRONMENTS} <= names
    assert "sn46_pipelines/py.typed" in names


def test_an_installed_package_loads_every_environment_with_no_variable_set(wheel, tmp_path):
    """Unpacked outside the checkout, as site-packages holds it: settings load from the package's
    own files."""
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = (
        "import sn46_pipelines.config as c, sys\n"
        "assert c.PACKAGED_ENVIRONMENTS.is_relative_to(sys.argv[1]), c.PACKAGED_ENVIRONMENTS\n"
        "print(' '.join(c.load_settings(env, environ={}).env for env in c.ENVIRONMENTS))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == list(ENVIRONMENTS)
