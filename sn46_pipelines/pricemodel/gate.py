"""The deployment gate: SN46's own rules, checked on the exported ONNX file before a model may be deployed.

SN46 scores a model by ``1 - MAPE`` on held-out listings, running its ONNX
file in onnxruntime on one CPU; it takes a float32 input of shape
``(batch, N)`` with ``10 <= N <= 76`` and a file of at most 200 MB, targets
MAPE below 15 % and R^2 above 0.70, and checks that +-1 % noise on the
features does not break the model. The gate applies exactly those rules,
on the validation rows and through onnxruntime (what validators run, not
the torch network it came from), plus two of this project's: the ONNX file
must agree with torch, and the model must beat the zip-median baseline.

Each rule is one :class:`Rule` with its value and threshold, so the asset
checks that show them, the commit metadata that records them and the
deployment decision that reads them all say the same thing.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .export import INPUT_NAME, OUTPUT_NAME, verify_onnx
from .features import COORDINATES, MAX_INPUTS, MIN_INPUTS, encode
from .metrics import NOISE, price_metrics, with_noise
from .train import TrainResult


@dataclass(frozen=True, slots=True)
class GateThresholds:
    """Per-environment limits (``model_gate`` in the environment's config file)."""

    max_mape: float = 0.15
    min_r2: float = 0.70
    max_noise_rise: float = 0.01
    max_onnx_mb: float = 200.0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    passed: bool
    summary: str
    """One line: the value against the threshold, or why it could not be measured."""
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class GateReport:
    rules: tuple[Rule, ...]
    thresholds: GateThresholds

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failed(self) -> list[str]:
        return [rule.name for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict[str, Any]:
        """What a commit's metadata records under ``gate``."""
        return {
            "passed": self.passed,
            "thresholds": asdict(self.thresholds),
            "rules": {
                r.name: {"passed": r.passed, "summary": r.summary, **_finite(r.values)} for r in self.rules
            },
        }


def evaluate_gate(
    result: TrainResult, onnx_path: str | os.PathLike[str], thresholds: GateThresholds = GateThresholds()
) -> GateReport:
    """Every rule of :data:`~.rules.RULES` for ``result``'s exported ``onnx_path``, on its validation rows."""
    import onnx
    import onnxruntime

    x = encode(result.validation, result.spec)
    actual = result.validation.column("price").to_numpy(zero_copy_only=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as SN46 runs it
    session = onnxruntime.InferenceSession(os.fspath(onnx_path), options, providers=["CPUExecutionProvider"])

    failures: list[str] = []

    def mape_of(inputs: np.ndarray) -> tuple[float, dict[str, float]]:
        """MAPE and metrics of the ONNX prices; infinite when the file cannot price the rows."""
        try:
            (prices,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs})
        except Exception as exc:  # noqa: BLE001 - onnxruntime's pybind errors (InvalidArgument, Fail...) share no other base
            failures.append(f"onnxruntime cannot run it on the validation rows: {exc}".splitlines()[0])
            prices = np.full(len(inputs), np.nan)
        prices = prices.astype(np.float64).reshape(-1)
        if prices.shape != actual.shape or not np.isfinite(prices).all():
            return math.inf, {"mape": math.inf, "r2": -math.inf}
        metrics = price_metrics(actual, prices)
        return metrics["mape"], metrics

    mape, metrics = mape_of(x)
    coordinates = result.spec.column_indices(COORDINATES)
    others = [i for i in range(x.shape[1]) if i not in coordinates]
    noisy, _ = mape_of(with_noise(x, others))
    noisy_all, _ = mape_of(with_noise(x, list(range(x.shape[1]))))
    baseline = result.baseline["mape"]
    rise = noisy - mape
    rules = [
        Rule(
            "sn46_mape",
            mape < thresholds.max_mape,
            f"MAPE {mape:.4f} (limit {thresholds.max_mape})",
            {"mape": mape, "limit": thresholds.max_mape},
        ),
        Rule(
            "sn46_r2",
            metrics["r2"] > thresholds.min_r2,
            f"R^2 {metrics['r2']:.4f} (floor {thresholds.min_r2})",
            {"r2": metrics["r2"], "floor": thresholds.min_r2},
        ),
        Rule(
            "robust_to_feature_noise",
            rise <= thresholds.max_noise_rise and noisy_all < baseline,
            f"+-{NOISE:.0%} noise: MAPE {mape:.4f} -> {noisy:.4f} without the coordinates (rise limit "
            f"{thresholds.max_noise_rise}), {noisy_all:.4f} with them (zip median {baseline:.4f})",
            {
                "mape_noisy": noisy,
                "rise": rise,
                "rise_limit": thresholds.max_noise_rise,
                "mape_noisy_with_coordinates": noisy_all,
                "baseline_mape": baseline,
            },
        ),
        _onnx_constraints(onnx.load(os.fspath(onnx_path)), os.path.getsize(onnx_path), thresholds, failures),
        _matches_torch(result, onnx_path, x),
        Rule(
            "beats_zip_median_baseline",
            mape < baseline,
            f"MAPE {mape:.4f} against the zip median's {baseline:.4f}",
            {"mape": mape, "baseline_mape": baseline},
        ),
    ]
    return GateReport(tuple(rules), thresholds)


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    """JSON has no infinity: a value that could not be measured is recorded as None."""
    return {k: v if math.isfinite(v) else None for k, v in values.items()}


def _onnx_constraints(model: Any, size: int, thresholds: GateThresholds, failures: list[str]) -> Rule:
    import onnx

    problems = failures[:1]
    megabytes = size / 2**20
    if megabytes > thresholds.max_onnx_mb:
        problems.append(f"{megabytes:.1f} MB is over {thresholds.max_onnx_mb} MB")
    inputs, outputs = model.graph.input, model.graph.output
    width = 0
    if len(inputs) != 1 or len(outputs) != 1:
        problems.append(f"{len(inputs)} inputs and {len(outputs)} outputs, not one each")
    else:
        tensor = inputs[0].type.tensor_type
        dims = tensor.shape.dim
        width = dims[1].dim_value if len(dims) == 2 else 0
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            problems.append(f"input type {onnx.TensorProto.DataType.Name(tensor.elem_type)}, not FLOAT")
        if len(dims) != 2 or dims[0].dim_value or not dims[0].dim_param:
            problems.append("input is not (batch, N) with a dynamic batch")
        elif not MIN_INPUTS <= width <= MAX_INPUTS:
            problems.append(f"N = {width} is outside {MIN_INPUTS}..{MAX_INPUTS}")
    summary = "; ".join(problems) or f"{megabytes:.3f} MB, float32 input (batch, {width})"
    return Rule("onnx_constraints", not problems, summary, {"megabytes": megabytes, "inputs": float(width)})


def _matches_torch(result: TrainResult, onnx_path: str | os.PathLike[str], x: np.ndarray) -> Rule:
    try:
        error = verify_onnx(result.net, result.spec, onnx_path, rows=x)
    except Exception as exc:  # noqa: BLE001 - a disagreement (ValueError), or onnxruntime's own error types
        return Rule("onnxruntime_matches_torch", False, str(exc).splitlines()[0], {})
    return Rule(
        "onnxruntime_matches_torch",
        True,
        f"largest log-price difference {error:.2e}",
        {"log_difference": error},
    )
