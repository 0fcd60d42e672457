"""The price network: raw feature vector in, normalized log price out.

Input scaling lives in the network as non-persistent buffers built from the
:class:`~.features.FeatureSpec`, so ``model.pt`` holds learned weights only and
``feature_config.json`` is the one source of the normalization. The network
predicts ``(log(price) - mean) / std``, which keeps every weight and constant
at log scale: dollars appear only after :meth:`PriceNet.price` exponentiates.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .features import FeatureSpec


class PriceNet(nn.Module):
    """A small MLP regressor (two hidden layers of ``hidden`` SiLU units) on standardized inputs."""

    def __init__(self, spec: FeatureSpec, hidden: int = 64) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden width must be at least 1, not {hidden}")
        self.hidden = hidden
        log, mean, std = spec.input_normalization()
        self.register_buffer("log_mask", torch.from_numpy(log), persistent=False)
        self.register_buffer("input_mean", torch.from_numpy(mean), persistent=False)
        self.register_buffer("input_std", torch.from_numpy(std), persistent=False)
        self.register_buffer("target_mean", torch.tensor(spec.target_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("target_std", torch.tensor(spec.target_std, dtype=torch.float32), persistent=False)
        self.layers = nn.Sequential(
            nn.Linear(spec.n_inputs, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized log price, shape ``(batch,)``."""
        scaled = torch.where(self.log_mask, torch.log1p(x.clamp_min(0.0)), x)
        return self.layers((scaled - self.input_mean) / self.input_std).squeeze(-1)

    def price(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted sale price in dollars, shape ``(batch,)``."""
        return torch.exp(self.target_mean + self.target_std * self.forward(x).float())


class PriceOutput(nn.Module):
    """``PriceNet`` with dollars as its output: the graph exported to ONNX."""

    def __init__(self, net: PriceNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.price(features)


def predict_prices(net: PriceNet, features: np.ndarray, *, batch_size: int = 16_384) -> np.ndarray:
    """Dollar prices for an encoded ``(rows, N)`` matrix, in float32 on the network's device.

    Inference runs in chunks so a million-row evaluation never holds a
    million-row activation matrix.
    """
    device = next(net.parameters()).device
    out = np.empty(len(features), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(features[start : start + batch_size])).to(device)
            out[start : start + len(chunk)] = net.price(chunk).double().cpu().numpy()
    return out
