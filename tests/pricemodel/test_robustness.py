"""The model is bounded inside its own graph: noisy, absurd or far-away inputs cannot make it extrapolate."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from sn46_pipelines.pricemodel.checkpoint import write_checkpoint
from sn46_pipelines.pricemodel.export import INPUT_NAME
from sn46_pipelines.pricemodel.features import COORDINATES, encode
from sn46_pipelines.pricemodel.metrics import with_noise
from sn46_pipelines.pricemodel.model import PRICE_MARGIN, predict_prices
from tests.pricemodel.pricemodel_helpers import mape


def test_one_percent_noise_off_the_coordinates_costs_at_most_a_hundredth_of_mape(regional_model):
    x = encode(regional_model.validation, regional_model.spec)
    actual = regional_model.validation.column("price").to_numpy()
    coordinates = regional_model.spec.column_indices(COORDINATES)
    others = [i for i in range(x.shape[1]) if i not in coordinates]
    clean = mape(actual, predict_prices(regional_model.net, x))
    for seed in range(3):
        noisy = mape(actual, predict_prices(regional_model.net, with_noise(x, others, seed=seed)))
        assert noisy - clean <= 0.01, (seed, clean, noisy)


def test_with_the_coordinates_noised_too_the_mlp_degrades_no_worse_than_gradient_boosting(
    regional_model, regional_hgb
):
    """+-1 % of a latitude is about 30 km: some loss is inherent, extrapolating on it is not."""
    x = encode(regional_model.validation, regional_model.spec)
    actual = regional_model.validation.column("price").to_numpy()
    noisy = with_noise(x, list(range(x.shape[1])))
    mlp = mape(actual, predict_prices(regional_model.net, noisy))
    trees = mape(actual, np.exp(regional_hgb.predict(noisy)))
    assert mlp <= trees + 0.005, (mlp, trees)
    assert mlp < regional_model.baseline["mape"]  # it still knows more than the zip median


def test_absurd_inputs_give_prices_inside_the_training_range_in_torch_and_onnx(regional_model, tmp_path):
    spec = regional_model.spec
    x = encode(regional_model.validation.slice(0, 4), spec)
    wild = np.concatenate([x * 1e6, x * -1e6, np.zeros_like(x), np.full_like(x, 3.0e38)])
    folder = write_checkpoint(regional_model, tmp_path / "ckpt")
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_prices,) = session.run(None, {INPUT_NAME: wild})
    torch_prices = predict_prices(regional_model.net, wild)
    low, high = np.exp(spec.target_low - PRICE_MARGIN), np.exp(spec.target_high + PRICE_MARGIN)
    for prices in (onnx_prices, torch_prices):
        assert np.isfinite(prices).all()
        assert (prices >= low * 0.999).all() and (prices <= high * 1.001).all()
    np.testing.assert_allclose(onnx_prices, torch_prices, rtol=1e-5)


def test_inputs_are_clipped_to_the_training_range(regional_model):
    """A home far outside every training coordinate is priced as at the edge of the data, not beyond it."""
    spec = regional_model.spec
    x = encode(regional_model.validation.slice(0, 50), spec)
    lat = spec.column_indices(["latitude"])[0]
    edge, beyond = x.copy(), x.copy()
    edge[:, lat] = spec.numeric[lat].high
    beyond[:, lat] = spec.numeric[lat].high + 5.0
    prices = predict_prices(regional_model.net, beyond)
    assert prices == pytest.approx(predict_prices(regional_model.net, edge))
