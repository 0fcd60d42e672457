"""Training learns the demo prices, reproducibly, on whatever device is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sn46_pipelines.pricemodel.train import TrainConfig, resolve_device, train
from tests.pricemodel.pricemodel_helpers import TINY


def test_training_learns_the_demo_data_far_better_than_the_zip_median(trained):
    assert trained.beats_baseline
    assert trained.metrics["mape"] < 0.5 * trained.baseline["mape"]
    assert trained.metrics["mape"] < 0.2  # the demo's price noise alone costs about 0.12
    assert trained.metrics["r2"] > 0.8 and trained.metrics["within_10pct"] > 0.35
    assert trained.losses[-1] < trained.losses[0]
    assert trained.rows["train"] + trained.rows["validation"] == trained.rows["used"] == trained.rows["input"]
    assert trained.device == "cpu" or torch.cuda.is_available()


def test_the_same_seed_gives_identical_weights_whatever_the_row_order(listings, trained):
    shuffled = listings.take(np.random.default_rng(7).permutation(listings.num_rows))
    again = train(shuffled, TrainConfig(**TINY))
    first, second = trained.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert again.metrics == trained.metrics and again.data_version == trained.data_version


def test_another_seed_gives_other_weights(listings, trained):
    other = train(listings, TrainConfig(**{**TINY, "seed": 1}))
    assert not torch.equal(other.net.layers[0].weight, trained.net.layers[0].weight)
    assert other.data_version == trained.data_version


def test_training_leaves_the_callers_random_state_and_thread_count_alone(listings):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train(listings, TrainConfig(**{**TINY, "epochs": 1, "row_limit": 500, "cpu_threads": 1}))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_row_limit_trains_on_a_sample(listings):
    result = train(listings, TrainConfig(**{**TINY, "epochs": 1, "row_limit": 500}))
    assert result.rows["train"] + result.rows["validation"] == result.rows["used"] == 500


def test_too_little_data_and_bad_settings_are_refused(listings):
    with pytest.raises(ValueError, match="too few listings"):
        train(listings.slice(0, 30), TrainConfig(epochs=1))
    for bad in (
        {"epochs": -1},
        {"steps": 0},
        {"early_stop_percent": 50},
        {"learning_rate": 0.0},
        {"val_percent": 100},
        {"row_limit": -1},
        {"hidden": 0},
    ):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_auto_device_is_cuda_exactly_when_cuda_is_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_with_bf16_autocast_learns_as_well(listings, trained):
    result = train(listings, TrainConfig(**{**TINY, "device": "cuda"}))
    assert result.bf16 and result.device.startswith("cuda")
    assert next(result.net.parameters()).device.type == "cpu"  # handed back ready to save and serve
    assert result.metrics["mape"] < 0.5 * result.baseline["mape"]
    assert abs(result.metrics["mape"] - trained.metrics["mape"]) < 0.05
