"""Training: prepared listings -> a fitted :class:`PriceNet`, its validation metrics and the baseline's.

Seeded and reproducible on CPU: the same listings (in any order) and the
same config give bit-identical weights, because the data is put in zpid
order first, the split and row sample come from zpid hashes, and all
randomness (initialization, shuffling) comes from the seed inside a forked
RNG state that leaves the caller's untouched.

On CUDA the whole training set goes to the GPU once, from pinned host memory
with a non-blocking copy (a few hundred MB at most for millions of listings),
and forward passes run under bf16 autocast; the loss and the optimizer state
stay float32. Batches are then index gathers on the device, not host
round-trips, which is what keeps a small MLP from being input-bound.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from .baseline import ZipMedianBaseline
from .features import (
    FeatureSpec,
    data_version,
    encode,
    fit_spec,
    limit_rows,
    log_prices,
    prepare,
    validation_mask,
    zpid_hashes,
)
from .metrics import price_metrics
from .model import PriceNet, predict_prices

#: Fewer rows than this on either side of the split makes every metric noise.
MIN_ROWS = 20


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """What a trainer chooses. The defaults train the demo data in seconds on a laptop CPU."""

    epochs: int = 30
    learning_rate: float = 3e-3
    batch_size: int = 256
    hidden: int = 64
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    row_limit: int = 0
    """Train on at most this many listings (a fixed hash sample); 0 means all."""
    seed: int = 0
    val_percent: int = 20
    weight_decay: float = 1e-4
    min_category_count: int = 5
    cpu_threads: int = 1
    """Intra-op threads while training on CPU (0: torch's default). One is fastest for this small MLP:
    its steps are many tiny ops, where extra threads mostly add synchronization."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")
        if self.row_limit < 0 or self.cpu_threads < 0:
            raise ValueError(f"row_limit and cpu_threads must be 0 or more ({self.row_limit}, {self.cpu_threads})")
        if not 0 < self.val_percent < 100:
            raise ValueError(f"val_percent must be between 1 and 99, not {self.val_percent}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A trained network on the CPU, in eval mode, with everything a checkpoint records about it."""

    net: PriceNet
    spec: FeatureSpec
    config: TrainConfig
    metrics: dict[str, float]
    """Validation metrics of the model."""
    baseline: dict[str, float]
    """Validation metrics of the per-zip median baseline, on the same rows."""
    train_metrics: dict[str, float]
    data_version: str
    rows: dict[str, int]
    """``input`` rows given, ``used`` after preparation and the row limit, and the two sides of the split."""
    device: str
    bf16: bool
    seconds: float
    """Wall time of the optimization loop (not data preparation or evaluation)."""
    validation: pa.Table
    """The prepared validation rows the metrics were measured on (the export check and the gate reuse them)."""
    losses: list[float] = field(default_factory=list)
    """Mean training loss of each epoch."""

    @property
    def beats_baseline(self) -> bool:
        return self.metrics["mape"] < self.baseline["mape"]

    @property
    def samples_per_second(self) -> float:
        return self.rows["train"] * self.config.epochs / self.seconds if self.seconds > 0 else math.inf


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; an explicit CUDA device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], not {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this machine has no CUDA device")
    return device


class TooFewListingsError(ValueError):
    """The training data is too small to fit and validate a model: nothing to train yet, not a fault."""


def train(listings: pa.Table, config: TrainConfig = TrainConfig()) -> TrainResult:
    """Fit a price model on ``listings`` (curated columns; any extra columns are ignored)."""
    table = prepare(listings)
    hashes = zpid_hashes(table.column("zpid").to_pylist())
    table, hashes = limit_rows(table, hashes, config.row_limit)
    in_validation = validation_mask(hashes, config.val_percent)
    train_rows = table.filter(pa.array(~in_validation))
    val_rows = table.filter(pa.array(in_validation))
    if min(train_rows.num_rows, val_rows.num_rows) < MIN_ROWS:
        raise TooFewListingsError(
            f"too few listings to train: {train_rows.num_rows} train and {val_rows.num_rows} validation rows "
            f"(need {MIN_ROWS} each) from {listings.num_rows} input rows"
        )
    spec = fit_spec(train_rows, min_category_count=config.min_category_count)
    x_train = encode(train_rows, spec)
    y_train = ((log_prices(train_rows) - spec.target_mean) / spec.target_std).astype(np.float32)

    device = resolve_device(config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), _cpu_threads(config.cpu_threads):
        torch.manual_seed(config.seed)
        net = PriceNet(spec, config.hidden).to(device)
        losses, seconds = _optimize(net, x_train, y_train, config, device)
    net = net.cpu().eval()

    baseline = ZipMedianBaseline.fit(train_rows)
    actual = val_rows.column("price").to_numpy(zero_copy_only=False)
    return TrainResult(
        net=net,
        spec=spec,
        config=config,
        metrics=price_metrics(actual, predict_prices(net, encode(val_rows, spec))),
        baseline=price_metrics(actual, baseline.predict(val_rows)),
        train_metrics=price_metrics(train_rows.column("price").to_numpy(zero_copy_only=False),
                                    predict_prices(net, x_train)),
        data_version=data_version(table),
        rows={"input": listings.num_rows, "used": table.num_rows, "train": train_rows.num_rows,
              "validation": val_rows.num_rows},
        device=str(device),
        bf16=device.type == "cuda",
        seconds=seconds,
        validation=val_rows,
        losses=losses,
    )


def _optimize(
    net: PriceNet, x: np.ndarray, y: np.ndarray, config: TrainConfig, device: torch.device
) -> tuple[list[float], float]:
    """AdamW with a one-cycle schedule and an L1 loss on normalized log price; (epoch losses, seconds).

    L1 in log space is the closest smooth-enough proxy for MAPE: for errors
    of a few tens of percent ``|log(p/a)|`` and ``|p - a| / a`` nearly agree.
    """
    on_cuda = device.type == "cuda"
    inputs, targets = _to_device(torch.from_numpy(x), device), _to_device(torch.from_numpy(y), device)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    shuffle = torch.Generator().manual_seed(config.seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    losses = []
    net.train()
    started = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=shuffle).to(device, non_blocking=on_cuda)
        total = torch.zeros((), device=device)
        for batch in order.split(config.batch_size):
            with autocast:
                predicted = net(inputs[batch])
            loss = F.l1_loss(predicted.float(), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(batch)
        losses.append(total)
    if on_cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return [float(t) / len(x) for t in losses], seconds


@contextlib.contextmanager
def _cpu_threads(count: int) -> Iterator[None]:
    """Use ``count`` intra-op threads (0: leave as is) for the block, then restore the previous count."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device once: from page-locked memory, asynchronously, on CUDA; as is on CPU."""
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)
