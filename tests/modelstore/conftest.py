"""Model-store fixtures: a model store on each backend and small checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sn46_pipelines.modelstore import ModelStore


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
