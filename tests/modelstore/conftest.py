"""Model-store fixtures: a store on each backend, small checkpoints, a crash-injecting wrapper."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sn46_pipelines.modelstore import ModelStore

WORKERS = Path(__file__).with_name("modelstore_workers.py")


@pytest.fixture
def mstore(store) -> ModelStore:
    """An empty model store on each backend (file and moto S3)."""
    return ModelStore(store)


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Write a small checkpoint folder whose content depends on ``seed``."""
    counter = iter(range(10**6))

    def make(seed: int | str = 0, *, extra: dict[str, bytes] | None = None) -> Path:
        folder = tmp_path / f"ckpt-{next(counter)}"
        folder.mkdir()
        (folder / "model.pt").write_bytes(f"weights-{seed}".encode() * 50)
        (folder / "feature_config.json").write_text('{"features": ["beds", "baths"]}')
        (folder / "metrics.json").write_text(f'{{"seed": "{seed}"}}')
        for name, data in (extra or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder

    return make


def run_worker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``modelstore_workers.py`` in a fresh interpreter (a real, separate process)."""
    return subprocess.run(
        [sys.executable, str(WORKERS), *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def start_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


class Crash(Exception):
    """The simulated process died here."""


class CrashingStore:
    """Delegates to a real store until the ``crash_at``-th write, then every call fails like a dead process.

    Only used for fault injection: the store underneath is real, so what the
    "crashed" commit left behind is exactly what a real crash would leave.
    """

    WRITES = {"put", "upload", "put_if_absent", "put_if_match", "delete", "delete_many", "copy"}

    def __init__(self, inner, crash_at: int) -> None:
        self._inner = inner
        self._crash_at = crash_at
        self.writes: list[tuple[str, str]] = []
        self.dead = False

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.dead:
                raise Crash(f"dead before {name}")
            if name in self.WRITES:
                if len(self.writes) == self._crash_at:
                    self.dead = True
                    raise Crash(f"crashed before {name} {args[:1]}")
                self.writes.append((name, str(args[0]) if args else ""))
            return attr(*args, **kwargs)

        return call
