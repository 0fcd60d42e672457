"""Price-model test helpers: small training settings and demo listings generated in memory."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

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
