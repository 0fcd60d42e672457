"""How good a price prediction is, in the terms SN46 scores (score = 1 - MAPE) and a few more."""

from __future__ import annotations

import numpy as np

#: Metric names in the order reports list them.
METRICS = ("mape", "mae", "r2", "within_10pct")


def price_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAPE, MAE (dollars), R^2 (on dollars) and the share of predictions within 10 % of the price.

    MAPE is the subnet's score; the others tell a trainer *why* it moved:
    MAE is dominated by expensive homes, R^2 by the spread of prices, and
    ``within_10pct`` by how many homes are priced about right.
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"need two equal, non-empty arrays (got {actual.shape} and {predicted.shape})")
    if not np.all(actual > 0):
        raise ValueError("actual prices must be positive for a percentage error")
    relative = np.abs(predicted - actual) / actual
    residual = float(np.sum((actual - predicted) ** 2))
    spread = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "mape": float(relative.mean()),
        "mae": float(np.abs(predicted - actual).mean()),
        "r2": 1.0 - residual / spread if spread > 0 else 0.0,
        "within_10pct": float((relative <= 0.10).mean()),
    }


#: SN46's robustness check: every feature multiplied by a factor drawn uniformly from 1 -/+ this.
NOISE = 0.01


def with_noise(x: np.ndarray, columns: list[int], *, scale: float = NOISE, seed: int = 0) -> np.ndarray:
    """``x`` with ``columns`` multiplied by uniform ``1 - scale .. 1 + scale`` noise (a fixed draw per seed).

    SN46 perturbs the input vector so; the gate and the benchmark use this one
    function so a model and its comparison see the very same noise.
    """
    factors = np.ones_like(x, dtype=np.float64)
    factors[:, columns] = np.random.default_rng(seed).uniform(1 - scale, 1 + scale, (len(x), len(columns)))
    return (x * factors).astype(x.dtype)
