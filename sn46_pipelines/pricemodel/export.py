"""ONNX export: the graph SN46 validators run on CPU.

Input ``features``: float32 ``(batch, N)`` built as ``feature_config.json``
describes (raw values, one-hot blocks); output ``price``: float32 dollars
``(batch,)``. Log scaling, standardization and the final ``exp`` are inside
the graph, with constants at log scale, so no initializer holds a dollar
amount (tests check this).
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch

from ..errors import SN46Error
from .features import FeatureSpec
from .model import PriceNet, PriceOutput

INPUT_NAME = "features"
OUTPUT_NAME = "price"
OPSET = 18
#: Largest difference of onnxruntime's and torch's log prices (about a relative one) a checkpoint may have.
TOLERANCE = 1e-4


def export_onnx(net: PriceNet, path: str | os.PathLike[str]) -> None:
    """Write ``net`` (dollar output, dynamic batch) to ``path`` as a checked ONNX model.

    Uses the TorchScript-based exporter: for a static MLP it gives the same
    graph as the ``torch.export`` one in about 0.5 s instead of 5-15 s of
    tracing and import, which matters in a pipeline step that runs per
    training. It is deprecated in recent torch, hence the silenced warning;
    switching to ``dynamo=True`` needs ``dynamic_shapes`` instead of
    ``dynamic_axes`` and nothing else.
    """
    import onnx

    example = torch.zeros(1, net.n_inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            PriceOutput(net.cpu().eval()),
            (example,),
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes file objects too
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))


class ModelDefectError(SN46Error, ValueError):
    """The trained network gives no usable price for in-distribution inputs: retrain, do not re-export."""


def verify_onnx(net: PriceNet, spec: FeatureSpec, path: str | os.PathLike[str], *, rows: np.ndarray) -> float:
    """Run ``path`` in onnxruntime (the CPU runtime SN46 scores with) against torch; return the largest
    difference of log prices.

    The probe is in-distribution by construction (:func:`onnx_probe`): the
    encoded validation ``rows`` plus rows at per-feature quantiles of them,
    so a valid model is never judged on inputs it was not trained for (a
    latitude at half its median is thousands of standard deviations out
    for a one-metro data set). Prices are compared as logs, the scale the
    network works in, so a tolerance means the same for a $50k condo and a
    $5M house. A non-finite or non-positive torch price is a
    :class:`ModelDefectError`; a disagreement above :data:`TOLERANCE` a
    ``ValueError``: an export that disagrees with the trained network must
    not be committed.
    """
    import onnxruntime

    probe = onnx_probe(spec, rows)
    with torch.inference_mode():
        torch_prices = net.cpu().eval().price(torch.from_numpy(probe)).double().numpy()
    broken = ~(np.isfinite(torch_prices) & (torch_prices > 0))
    if broken.any():
        raise ModelDefectError(
            f"{path}: the trained network gives no finite positive price for {int(broken.sum())} of "
            f"{len(probe)} in-distribution probe rows (first: {torch_prices[broken][0]!r}); the model is "
            "defective (diverged training or corrupt weights), not its export"
        )
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    (onnx_prices,) = session.run([OUTPUT_NAME], {INPUT_NAME: probe})
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.abs(np.log(onnx_prices.astype(np.float64)) - np.log(torch_prices))
    error = float(np.max(np.where(np.isfinite(gaps), gaps, np.inf)))
    if not error <= TOLERANCE:
        raise ValueError(
            f"{path}: onnxruntime and torch disagree by {error:.2e} in log price (tolerance {TOLERANCE:.0e})"
        )
    return error


#: Validation rows the probe takes at most (the first ones: the probe is the same on every run).
PROBE_ROWS = 2048
#: Per-feature quantiles of the validation rows the probe adds.
PROBE_QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def onnx_probe(spec: FeatureSpec, rows: np.ndarray) -> np.ndarray:
    """In-distribution inputs: up to :data:`PROBE_ROWS` of ``rows``, then per-feature quantiles of
    ``rows`` for the numeric columns with every one-hot slot lit in turn (so every weight takes part)."""
    if rows.ndim != 2 or rows.shape[1] != spec.n_inputs or len(rows) == 0:
        raise ValueError(f"probe rows must be a non-empty (rows, {spec.n_inputs}) matrix, not {rows.shape}")
    n = len(spec.numeric)
    count = max(len(PROBE_QUANTILES), *(f.width for f in spec.categorical))
    extra = np.zeros((count, spec.n_inputs), dtype=np.float32)
    quantiles = np.quantile(rows[:, :n].astype(np.float64), PROBE_QUANTILES, axis=0)
    extra[:, :n] = quantiles[np.arange(count) % len(PROBE_QUANTILES)]
    offset = n
    for feature in spec.categorical:
        extra[np.arange(count), offset + np.arange(count) % feature.width] = 1.0
        offset += feature.width
    return np.concatenate([rows[:PROBE_ROWS].astype(np.float32), extra])
