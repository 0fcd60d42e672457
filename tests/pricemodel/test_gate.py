"""The deployment gate applies SN46's rules to the exported ONNX file, on both demo data sets."""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from sn46_pipelines.pricemodel.checkpoint import write_checkpoint
from sn46_pipelines.pricemodel.gate import GateThresholds, evaluate_gate
from sn46_pipelines.pricemodel.layout import ONNX
from sn46_pipelines.pricemodel.rules import RULES


@pytest.mark.parametrize("data", ["regional", "multi_city"])
def test_the_default_model_passes_every_rule_on_both_demo_sets(request, data, tmp_path):
    model = request.getfixturevalue(f"{data}_model")
    folder = write_checkpoint(model, tmp_path / "ckpt")
    report = evaluate_gate(model, folder / ONNX)
    assert [r.name for r in report.rules] == list(RULES)
    assert report.passed, [r.summary for r in report.rules if not r.passed]
    rules = report.to_dict()["rules"]
    assert rules["sn46_mape"]["mape"] == pytest.approx(model.metrics["mape"], rel=1e-4)  # onnxruntime = torch
    assert rules["robust_to_feature_noise"]["rise"] <= 0.01
    assert 10 <= rules["onnx_constraints"]["inputs"] <= 76 and rules["onnx_constraints"]["megabytes"] < 1


def test_each_limit_fails_its_own_rule(multi_city_model, tmp_path):
    folder = write_checkpoint(multi_city_model, tmp_path / "ckpt")
    strict = GateThresholds(max_mape=0.01, min_r2=0.999, max_noise_rise=0.0, max_onnx_mb=0.001)
    report = evaluate_gate(multi_city_model, folder / ONNX, strict)
    assert not report.passed
    assert report.failed == ["sn46_mape", "sn46_r2", "robust_to_feature_noise", "onnx_constraints"]
    summaries = {r.name: r.summary for r in report.rules}
    assert "limit 0.01" in summaries["sn46_mape"] and "MB is over 0.001 MB" in summaries["onnx_constraints"]


def test_an_onnx_file_outside_sn46s_format_and_one_that_disagrees_with_torch_fail(multi_city_model, tmp_path):
    folder = write_checkpoint(multi_city_model, tmp_path / "ckpt")
    model = onnx.load(str(folder / ONNX))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4  # a fixed batch of 4
    onnx.save(model, str(folder / ONNX))
    report = evaluate_gate(dataclasses.replace(multi_city_model), folder / ONNX)
    assert "dynamic batch" in {r.name: r.summary for r in report.rules}["onnx_constraints"]

    other = write_checkpoint(multi_city_model, tmp_path / "other")
    tampered = dataclasses.replace(multi_city_model, net=_shifted(multi_city_model.net))
    report = evaluate_gate(tampered, other / ONNX)
    assert report.failed == ["onnxruntime_matches_torch"]


def _shifted(net):
    import copy

    import torch

    shifted = copy.deepcopy(net)
    with torch.no_grad():
        shifted.layers[-1].bias += 0.01
    return shifted
