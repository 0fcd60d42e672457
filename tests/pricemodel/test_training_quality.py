"""Enough optimization for the data, chosen on training rows, using every column uploads carry."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sn46_pipelines.pricemodel.features import MAX_INPUTS, encode, fit_spec, prepare
from sn46_pipelines.pricemodel.train import EpochReport, TrainConfig, train
from tests.pricemodel.pricemodel_helpers import TINY, mape, regional


@pytest.mark.parametrize("data", ["regional", "multi_city"])
def test_the_default_mlp_is_no_worse_than_gradient_boosting_on_the_same_inputs_and_split(request, data):
    """Both measured here, on the same validation rows: a comparison, not a timing."""
    model = request.getfixturevalue(f"{data}_model")
    trees = request.getfixturevalue(f"{data}_hgb")
    actual = model.validation.column("price").to_numpy()
    hgb = mape(actual, np.exp(trees.predict(encode(model.validation, model.spec))))
    assert model.metrics["mape"] <= hgb + 0.005, (model.metrics["mape"], hgb)
    assert model.metrics["mape"] < 0.15 and model.metrics["r2"] > 0.70  # SN46's targets
    assert model.best_epoch <= len(model.losses) < model.config.planned_epochs(model.rows["train"]) + 1


def test_epochs_follow_the_step_budget_and_early_stopping_keeps_the_best_epoch(regional_model):
    config = regional_model.config
    assert config.planned_epochs(600) > config.planned_epochs(60_000) >= 1
    assert config.planned_epochs(10) == config.max_epochs and TrainConfig(epochs=7).planned_epochs(10) == 7
    rows = regional_model.rows
    assert 0.05 < rows["early_stopping"] / rows["train"] < 0.15  # carved from the training rows only
    assert rows["train"] + rows["validation"] == rows["used"]


def test_progress_reports_every_epoch_while_training_runs(listings):
    seen: list[EpochReport] = []
    result = train(listings, TrainConfig(**{**TINY, "epochs": 4, "patience": 0}), progress=seen.append)
    assert [r.epoch for r in seen] == [1, 2, 3, 4] and all(r.epochs == 4 for r in seen)
    assert [r.loss for r in seen] == result.losses
    assert all(r.holdout_mape is not None and 0 < r.holdout_mape < 1 for r in seen)
    best = min(seen, key=lambda r: r.holdout_mape)
    assert result.best_epoch == best.epoch == seen[-1].best_epoch
    assert seen[0].line().startswith("epoch 1/4: loss ") and "early-stopping MAPE" in seen[0].line()


def test_lot_size_year_built_days_on_market_and_status_are_inputs_when_present(regional_listings, listings):
    spec = fit_spec(prepare(regional_listings))
    numeric = {f.name: f for f in spec.numeric}
    assert {"lot_size", "year_built", "days_on_zillow"} <= set(numeric)
    assert numeric["year_built"].std > 1 and numeric["lot_size"].high > numeric["lot_size"].low
    assert any(c.name == "home_status" for c in spec.categorical)
    # The multi-city set has no epoch columns: they read as missing and the model trains all the same.
    assert "lot_size" not in listings.column_names
    plain = fit_spec(prepare(listings))
    lot = {f.name: f for f in plain.numeric}["lot_size"]
    assert lot.low == lot.high  # a constant input: clipped to one value, it carries nothing


def test_a_metro_with_more_zip_codes_than_fit_keeps_the_input_within_sn46s_width():
    table = regional(1_500)
    zips = pa.array([f"7{i % 120:04d}" for i in range(table.num_rows)])  # 120 zips, about 12 homes each
    spec = fit_spec(prepare(table.set_column(table.schema.get_field_index("zip_code"), "zip_code", zips)))
    assert spec.n_inputs == MAX_INPUTS
    assert 30 < len(spec.categorical[-1].vocabulary) < 120
