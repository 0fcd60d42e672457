"""Price-model fixtures: demo listings generated in memory, and one small trained model per session."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES

#: Small settings that still learn the demo prices well on one CPU core in a couple of seconds.
TINY = {"epochs": 6, "hidden": 32, "batch_size": 128}


def demo_listings(rows_per_place: int = 120, seed: int = 0) -> pa.Table:
    """Demo listings (the same generator ``sn46 demo`` uses) for every demo zip code."""
    rng = np.random.default_rng(seed)
    newest = datetime(2026, 11, 20, tzinfo=timezone.utc)
    tables = [
        synth_listings(rng, place, np.arange(i * 10_000, i * 10_000 + rows_per_place) + 1, newest=newest)
        for i, place in enumerate(PLACES)
    ]
    return pa.concat_tables(tables)


@pytest.fixture(scope="session")
def listings() -> pa.Table:
    return demo_listings()


@pytest.fixture(scope="session")
def trained(listings):
    """One model trained with :data:`TINY` settings, shared by the tests that only read it."""
    from sn46_pipelines.pricemodel.train import TrainConfig, train

    return train(listings, TrainConfig(**TINY))


@pytest.fixture(scope="session")
def checkpoint_dir(trained, tmp_path_factory) -> Path:
    from sn46_pipelines.pricemodel.checkpoint import write_checkpoint

    return write_checkpoint(trained, tmp_path_factory.mktemp("checkpoint"))
