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

from .features import FeatureSpec
from .model import PriceNet, PriceOutput

INPUT_NAME = "features"
OUTPUT_NAME = "price"
OPSET = 18
#: Largest relative difference between onnxruntime's and torch's prices a checkpoint may have.
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

    example = torch.zeros(1, net.layers[0].in_features)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            PriceOutput(net.cpu().eval()),
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))


def verify_onnx(net: PriceNet, spec: FeatureSpec, path: str | os.PathLike[str]) -> float:
    """Run ``path`` in onnxruntime (the CPU runtime SN46 scores with) against torch; return the max relative error.

    The probe rows light every one-hot slot and take each numeric feature
    at half, once and twice its training median, so every weight the graph
    holds takes part. Raises ``ValueError`` above :data:`TOLERANCE`: an
    export that disagrees with the trained network must not be committed.
    """
    import onnxruntime

    probe = onnx_probe(spec)
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    (onnx_prices,) = session.run([OUTPUT_NAME], {INPUT_NAME: probe})
    with torch.inference_mode():
        torch_prices = net.cpu().eval().price(torch.from_numpy(probe)).numpy()
    error = float(np.max(np.abs(onnx_prices.astype(np.float64) / torch_prices - 1.0)))
    if not error <= TOLERANCE:
        raise ValueError(f"{path}: onnxruntime and torch disagree by {error:.2e} (tolerance {TOLERANCE:.0e})")
    return error


def onnx_probe(spec: FeatureSpec) -> np.ndarray:
    """Inputs covering every one-hot slot and three scales of each numeric feature."""
    rows = max(3, *(f.width for f in spec.categorical))
    probe = np.zeros((rows, spec.n_inputs), dtype=np.float32)
    scale = np.array([0.5, 1.0, 2.0])[np.arange(rows) % 3]
    probe[:, : len(spec.numeric)] = np.outer(scale, [f.fill for f in spec.numeric])
    offset = len(spec.numeric)
    for feature in spec.categorical:
        probe[np.arange(rows), offset + np.arange(rows) % feature.width] = 1.0
        offset += feature.width
    return probe
