"""The training benchmark's model comparison runs end to end and prints every model's scores."""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

import pytest

from sn46_pipelines.pricemodel.train import TrainConfig
from tests.support.paths import REPO

BENCH = REPO / "benchmarks" / "training_bench.py"

#: Tiny enough that both data sets run in a few seconds on one CPU core.
ROWS = 600
CONFIG = TrainConfig(steps=300, hidden=32)


def _bench() -> ModuleType:
    """The script as a module (benchmarks/ is no package): its functions, without running ``main``."""
    spec = importlib.util.spec_from_file_location("training_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compare_reports_every_model_on_both_data_sets_with_finite_numbers():
    bench = _bench()
    scores = [
        s
        for name, listings in bench.comparison_datasets(ROWS).items()
        for s in bench.compare_models(name, listings, CONFIG)
    ]
    models = ["MLP (TrainConfig())", "HistGradientBoosting", "ridge (scaled inputs)", "zip median (baseline)"]
    assert [(s.dataset, s.model) for s in scores] == [
        (d, m) for d in ("regional", "multi-city") for m in models
    ]
    for s in scores:
        measured = [s.mape, s.median_ape, s.r2]
        if s.model != "zip median (baseline)":
            measured += [s.mape_noise, s.mape_noise_all, s.train_seconds]
        assert all(value is not None and math.isfinite(value) for value in measured), s
        assert 0 < s.mape < 1 and s.median_ape <= s.mape * 2
    assert [s.onnx_ms_per_1k is not None and s.onnx_ms_per_1k > 0 for s in scores] == [
        m.startswith("MLP") for _ in range(2) for m in models
    ]
    # The models actually learned: each beats the zip median on both sets.
    for dataset in ("regional", "multi-city"):
        by_model = {s.model: s.mape for s in scores if s.dataset == dataset}
        assert max(by_model[m] for m in models[:3]) < by_model["zip median (baseline)"]

    table = bench.format_comparison(scores).splitlines()
    assert table[0].split()[:2] == ["data", "set"] and set(table[1]) == {"-", " "}
    assert len(table) == 2 + len(scores)
    for line, s in zip(table[2:], scores):
        assert line.startswith(s.dataset) and s.model in line and f"{s.mape:.4f}" in line
    assert len({len(line) for line in table[:3]}) == 1  # columns aligned (rows end where numbers do)
