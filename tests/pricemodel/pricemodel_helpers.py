"""Price-model test helpers: small training settings and demo listings generated in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES, Place

#: Small settings that still learn the demo prices well on one CPU core in a couple of seconds.
TINY = {"epochs": 6, "hidden": 32, "batch_size": 128}


def demo_listings(rows_per_place: int = 120, seed: int = 0) -> pa.Table:
    """Demo listings (the same generator ``sn46 demo`` uses) for every demo zip code."""
    rng = np.random.default_rng(seed)
    newest = datetime(2026, 11, 20, tzinfo=UTC)
    tables = [
        synth_listings(rng, place, np.arange(i * 10_000, i * 10_000 + rows_per_place) + 1, newest=newest)
        for i, place in enumerate(PLACES)
    ]
    return pa.concat_tables(tables)


#: Two Austin zip codes about 15 km apart: one metro, so coordinates span a tenth of a degree.
TWO_ZIPS = (
    Place("78701", "Austin", "TX", 30.2711, -97.7437, 450.0),
    Place("78759", "Austin", "TX", 30.4036, -97.7526, 300.0),
)


def two_zip_listings(rows_per_zip: int = 300, seed: int = 0) -> pa.Table:
    """About 600 listings in :data:`TWO_ZIPS`: the data set the old export probe failed on."""
    rng = np.random.default_rng(seed)
    newest = datetime(2026, 11, 20, tzinfo=UTC)
    return pa.concat_tables(
        synth_listings(rng, place, np.arange(rows_per_zip) + 1 + i * 10_000, newest=newest)
        for i, place in enumerate(TWO_ZIPS)
    )


def regional(rows: int = 2_500, seed: int = 0) -> pa.Table:
    """The regional demo set (one metro, coordinates within about 0.2 degrees)."""
    from sn46_pipelines.demo.region import regional_listings

    return regional_listings(rows, seed=seed, newest=datetime(2026, 11, 20, tzinfo=UTC))


def fit_hgb(result, listings: pa.Table):
    """scikit-learn's HistGradientBoostingRegressor (untuned) fitted on ``result``'s training split, with the
    same input vector and log-price target: the bar the MLP is held to. Prices: ``exp(model.predict(x))``."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from sn46_pipelines.pricemodel.features import encode, log_prices, prepare, validation_mask, zpid_hashes

    table = prepare(listings)
    in_validation = validation_mask(zpid_hashes(table.column("zpid").to_pylist()), result.config.val_percent)
    train_rows = table.filter(pa.array(~in_validation))
    with threadpool_limits(1):  # as the MLP trains; OpenMP's threads on a busy machine are 20x slower
        return HistGradientBoostingRegressor(random_state=0).fit(
            encode(train_rows, result.spec), log_prices(train_rows)
        )


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - actual) / actual))
