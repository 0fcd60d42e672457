"""What the inference server holds: a loaded price model that turns listings into dollars."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..modelstore import Checkpoint
from .features import FeatureSpec, encode, listings_table
from .layout import FEATURE_CONFIG, WEIGHTS
from .model import PriceNet, predict_prices


def load_net(
    weights: str | os.PathLike[str], feature_config: str | os.PathLike[str]
) -> tuple[PriceNet, FeatureSpec]:
    """Rebuild a checkpoint's network on the CPU, in eval mode, from its ``model.pt`` and feature config."""
    config = json.loads(Path(feature_config).read_text())
    spec = FeatureSpec.from_dict(config)
    net = PriceNet(spec, hidden=int(config["model"]["hidden"]))
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval(), spec


@dataclass(frozen=True, slots=True)
class Predictor:
    """A price model ready to serve; immutable, so a hot swap replaces it whole and no reader sees a mix."""

    net: PriceNet
    spec: FeatureSpec

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Predictor:
        """Load the checkpoint checked out (or written) in ``folder``."""
        return cls(*load_net(os.path.join(folder, WEIGHTS), os.path.join(folder, FEATURE_CONFIG)))

    def predict(self, listings: Sequence[Mapping[str, Any]] | pa.Table) -> np.ndarray:
        """Dollar prices, one per listing (JSON-like mappings or a table with the feature columns)."""
        table = listings if isinstance(listings, pa.Table) else listings_table(listings)
        if table.num_rows == 0:
            return np.zeros(0)
        return predict_prices(self.net, encode(table, self.spec))


def load_predictor(checkpoint: Checkpoint) -> Predictor:
    """Loader hook for :class:`~sn46_pipelines.modelstore.InferenceClient` (files already hash-verified)."""
    return Predictor(*load_net(checkpoint.path(WEIGHTS), checkpoint.path(FEATURE_CONFIG)))
