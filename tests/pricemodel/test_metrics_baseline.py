"""Metrics against hand-computed values, and the zip-median baseline."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sn46_pipelines.pricemodel.baseline import ZipMedianBaseline
from sn46_pipelines.pricemodel.metrics import price_metrics


def test_metrics_match_hand_computed_values():
    actual = np.array([100.0, 200.0, 400.0])
    predicted = np.array([110.0, 150.0, 400.0])
    m = price_metrics(actual, predicted)
    assert m["mape"] == pytest.approx((0.10 + 0.25 + 0.0) / 3)
    assert m["mae"] == pytest.approx(20.0)
    assert m["r2"] == pytest.approx(1 - (100 + 2500) / (np.var(actual) * 3))
    assert m["within_10pct"] == pytest.approx(2 / 3)  # exactly 10 % counts as within
    assert price_metrics(actual, actual)["r2"] == 1.0


def test_metrics_refuse_what_they_cannot_score():
    with pytest.raises(ValueError):
        price_metrics(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        price_metrics(np.array([0.0]), np.array([1.0]))


def test_baseline_is_the_median_price_of_each_zip_and_the_overall_median_elsewhere():
    table = pa.table({"zip_code": ["a", "a", "a", "b", "b", None], "price": [1.0, 2.0, 9.0, 10.0, 20.0, 7.0]})
    baseline = ZipMedianBaseline.fit(table)
    assert baseline.medians == {"a": 2.0, "b": 15.0}
    assert baseline.overall == 8.0
    query = pa.table({"zip_code": ["b", "a", "zzz", None]})
    assert baseline.predict(query).tolist() == [15.0, 2.0, 8.0, 8.0]
