"""The export check judges a model on inputs it was trained for, so it cannot fail a valid model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sn46_pipelines.pricemodel.checkpoint import write_checkpoint
from sn46_pipelines.pricemodel.export import ModelDefectError, verify_onnx
from sn46_pipelines.pricemodel.features import encode
from sn46_pipelines.pricemodel.train import TrainConfig, train
from tests.pricemodel.pricemodel_helpers import TINY, two_zip_listings


def test_two_zip_codes_far_apart_in_one_metro_export_and_verify(tmp_path):
    """About 600 listings from two Austin zips 15 km apart: the old probe (each numeric feature at 0.5x,
    1x and 2x its median) put latitude thousands of standard deviations out, exp overflowed to inf in both
    runtimes, and inf/inf failed the check with "disagree by nan"."""
    result = train(two_zip_listings(), TrainConfig(**TINY))
    folder = write_checkpoint(result, tmp_path / "ckpt")
    rows = encode(result.validation, result.spec)
    assert verify_onnx(result.net, result.spec, folder / "model.onnx", rows=rows) <= 1e-4


def test_a_network_that_prices_listings_as_inf_is_reported_as_a_model_defect(trained, checkpoint_dir):
    broken = copy.deepcopy(trained.net)
    with torch.no_grad():
        broken.layers[0].weight[0, 0] = float("nan")
    rows = encode(trained.validation, trained.spec)
    with pytest.raises(ModelDefectError, match=r"no finite positive price for \d+ of \d+ in-distribution"):
        verify_onnx(broken, trained.spec, checkpoint_dir / "model.onnx", rows=rows)


def test_probe_rows_must_match_the_model(trained, checkpoint_dir):
    with pytest.raises(ValueError, match="probe rows"):
        verify_onnx(trained.net, trained.spec, checkpoint_dir / "model.onnx", rows=np.zeros((3, 2), "f4"))
