"""The price network: raw feature vector in, normalized log price out, both bounded.

Input scaling lives in the network as non-persistent buffers built from the
:class:`~.features.FeatureSpec`, so ``model.pt`` holds learned weights only and
``feature_config.json`` is the one source of the normalization. The network
predicts ``(log(price) - mean) / std``, which keeps every weight and constant
at log scale: dollars appear only after :meth:`PriceNet.price` exponentiates.

Robust by construction, in the graph itself (so the ONNX file needs nothing
else): every input is clipped to its training range (after scaling), so a
noisy or absurd value is read as the nearest value the network was trained
on and never extrapolated; coordinates enter as offsets from the training
centroid in units of their spread (a latitude of 30.27 is never a large
number to the network); and the output is clipped to the training log-price
range widened by :data:`PRICE_MARGIN`, so no input can make ``exp`` overflow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .features import FeatureSpec

#: How far (in log price) outside the training prices the model may predict: about -26 % .. +35 %.
PRICE_MARGIN = 0.3


class PriceNet(nn.Module):
    """A small MLP regressor (two hidden layers of ``hidden`` SiLU units) on clipped, standardized inputs."""

    # The buffers registered in __init__ (constants of the graph, not parameters).
    log_mask: torch.Tensor
    input_mean: torch.Tensor
    input_std: torch.Tensor
    input_low: torch.Tensor
    input_high: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor
    output_low: torch.Tensor
    output_high: torch.Tensor

    def __init__(self, spec: FeatureSpec, hidden: int = 64) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden width must be at least 1, not {hidden}")
        self.hidden = hidden
        self.n_inputs = spec.n_inputs
        log, mean, std = spec.input_normalization()
        low, high = (np.where(log, np.log1p(np.where(log, b, 0.0)), b) for b in spec.input_bounds())
        y_low = (spec.target_low - PRICE_MARGIN - spec.target_mean) / spec.target_std
        y_high = (spec.target_high + PRICE_MARGIN - spec.target_mean) / spec.target_std
        buffers = {
            "log_mask": torch.from_numpy(log),
            "input_mean": torch.from_numpy(mean),
            "input_std": torch.from_numpy(std),
            # The training range in standardized units: small numbers, the graph holds no square feet.
            "input_low": torch.from_numpy(((low - mean) / std).astype(np.float32)),
            "input_high": torch.from_numpy(((high - mean) / std).astype(np.float32)),
            "target_mean": torch.tensor(spec.target_mean, dtype=torch.float32),
            "target_std": torch.tensor(spec.target_std, dtype=torch.float32),
            "output_low": torch.tensor(y_low, dtype=torch.float32),
            "output_high": torch.tensor(y_high, dtype=torch.float32),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)
        self.layers = nn.Sequential(
            nn.Linear(spec.n_inputs, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized log price, shape ``(batch,)``, within the training range plus the margin."""
        scaled = torch.where(self.log_mask, torch.log1p(x.clamp_min(0.0)), x)
        standard = (scaled - self.input_mean) / self.input_std
        y = self.layers(torch.minimum(torch.maximum(standard, self.input_low), self.input_high)).squeeze(-1)
        return torch.clamp(y, self.output_low.to(y.dtype), self.output_high.to(y.dtype))

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
