"""Model-store fixtures: a model store on each backend and small checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sn46_pipelines.modelstore import ModelStore


def _serialise_moto_puts() -> None:
    """Make moto's conditional PUT atomic, as it is on real S3.

    moto checks ``If-None-Match``/``If-Match`` and then stores the object with
    no lock in between, so under ThreadedMotoServer two racing writers can
    both "win" (seen here: 8 committers, one commit silently overwritten).
    The model store's races are only meaningful against a server that gets
    this right, so PUTs are serialised in this test process's moto server.
    """
    from moto.s3.responses import S3Response

    if getattr(S3Response.put_object, "_sn46_serialised", False):
        return
    original, lock = S3Response.put_object, threading.Lock()

    def put_object(self):
        with lock:
            return original(self)

    put_object._sn46_serialised = True
    S3Response.put_object = put_object


_serialise_moto_puts()


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
