"""Loader hooks for :class:`~sn46_pipelines.modelstore.inference.InferenceClient`.

A loader turns a verified local checkpoint into a model object. torch and
onnx are imported inside the hooks only, so nothing heavy loads with the
model store or its CLI.
"""

from __future__ import annotations

import json
from typing import Any

from .inference import Checkpoint, Loader


def torch_loader(
    filename: str = "model.pt", *, torchscript: bool = False, map_location: str = "cpu"
) -> Loader:
    """Load ``filename`` with ``torch.load`` (weights only: no pickle code runs) or ``torch.jit.load``."""

    def load(checkpoint: Checkpoint) -> Any:
        import torch

        path = checkpoint.path(filename)
        if torchscript:
            model = torch.jit.load(str(path), map_location=map_location)
            model.eval()
            return model
        return torch.load(path, map_location=map_location, weights_only=True)

    return load


def onnx_loader(filename: str = "model.onnx") -> Loader:
    """Load and structurally check an ONNX model (``onnx.ModelProto``)."""

    def load(checkpoint: Checkpoint) -> Any:
        import onnx

        model = onnx.load(str(checkpoint.path(filename)))
        onnx.checker.check_model(model)
        return model

    return load


def json_loader(filename: str = "metrics.json") -> Loader:
    """Load a JSON file: for configs and metrics, and a dependency-free loader for tests."""

    def load(checkpoint: Checkpoint) -> Any:
        return json.loads(checkpoint.path(filename).read_text())

    return load
