"""Training: prepared listings -> a fitted :class:`PriceNet`, its validation metrics and the baseline's.

Enough optimization for the data, and no more: by default the number of
epochs follows from a budget of optimizer steps (:attr:`TrainConfig.steps`),
so 600 listings get hundreds of passes and a million get a few; a slice of
the training rows (never the validation rows) is held out for early
stopping, and the weights of the epoch that priced it best are kept. The
learning rate follows a one-cycle schedule (warm-up, then cosine decay).

Seeded and reproducible on CPU: the same listings (in any order) and the
same config give bit-identical weights, because the data is put in zpid
order first, the split, the early-stopping slice and the row sample come
from zpid hashes, and all randomness (initialization, shuffling) comes from
the seed inside a forked RNG state that leaves the caller's untouched.

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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from ..errors import SN46Error
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

    epochs: int = 0
    """Passes over the training rows; 0 (the default): as many as :attr:`steps` optimizer steps take,
    between 1 and :attr:`max_epochs`."""
    steps: int = 3000
    max_epochs: int = 300
    learning_rate: float = 3e-3
    batch_size: int = 128
    hidden: int = 128
    patience: int = 25
    """Stop after this many epochs without a better early-stopping MAPE (0: never stop early)."""
    early_stop_percent: int = 10
    """Share of the training rows held out to choose the epoch (0: none; the last epoch is kept)."""
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
        for name in ("steps", "max_epochs", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("epochs", "patience", "row_limit", "cpu_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")
        if not 0 < self.val_percent < 100:
            raise ValueError(f"val_percent must be between 1 and 99, not {self.val_percent}")
        if not 0 <= self.early_stop_percent < 50:
            raise ValueError(f"early_stop_percent must be between 0 and 49, not {self.early_stop_percent}")

    def planned_epochs(self, rows: int) -> int:
        """Epochs for ``rows`` training rows: :attr:`epochs`, or what the step budget takes."""
        if self.epochs:
            return self.epochs
        return min(self.max_epochs, max(1, math.ceil(self.steps / math.ceil(rows / self.batch_size))))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EpochReport:
    """One finished epoch, as :func:`train` hands it to its ``progress`` callback."""

    epoch: int
    """1-based."""
    epochs: int
    """Planned epochs (training may stop earlier)."""
    loss: float
    """Mean training loss (L1 on normalized log price)."""
    holdout_mape: float | None
    """MAPE on the early-stopping rows (carved from the training rows); None without them."""
    best_epoch: int
    seconds: float
    """Since the optimization began."""

    def line(self) -> str:
        """``epoch 12/40: loss 0.1032, early-stopping MAPE 0.1214 (best: epoch 11), 3.2 s``."""
        mape = "" if self.holdout_mape is None else f", early-stopping MAPE {self.holdout_mape:.4f}"
        return (
            f"epoch {self.epoch}/{self.epochs}: loss {self.loss:.4f}{mape} "
            f"(best: epoch {self.best_epoch}), {self.seconds:.1f} s"
        )


#: Called after every epoch; a progress bar, a log line, a Pipes message.
Progress = Callable[[EpochReport], None]


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
    """``input`` rows given, ``used`` after preparation and the row limit, the two sides of the split,
    and ``early_stopping``: the training rows held out to choose the epoch."""
    device: str
    bf16: bool
    seconds: float
    """Wall time of the optimization loop (not data preparation or evaluation)."""
    validation: pa.Table
    """The prepared validation rows the metrics were measured on (reused by the export check and the gate)."""
    losses: list[float] = field(default_factory=list)
    """Mean training loss of each epoch run."""
    best_epoch: int = 0
    """The epoch whose weights were kept (1-based)."""

    @property
    def beats_baseline(self) -> bool:
        return self.metrics["mape"] < self.baseline["mape"]

    @property
    def samples_per_second(self) -> float:
        fitted = self.rows["train"] - self.rows["early_stopping"]
        return fitted * len(self.losses) / self.seconds if self.seconds > 0 else math.inf


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


class TooFewListingsError(SN46Error, ValueError):
    """The training data is too small to fit and validate a model: nothing to train yet, not a fault."""


def train(
    listings: pa.Table, config: TrainConfig = TrainConfig(), progress: Progress | None = None
) -> TrainResult:
    """Fit a price model on ``listings`` (curated columns; any extra columns are ignored).

    ``progress`` is called after every epoch with its loss and early-stopping
    MAPE, while training runs.
    """
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
    held_out = early_stopping_mask(hashes[~in_validation], config.early_stop_percent)
    if held_out.sum() < MIN_ROWS or (~held_out).sum() < MIN_ROWS:
        held_out[:] = False  # too few rows to choose an epoch by: train the planned epochs, keep the last

    device = resolve_device(config.device)
    forked = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    with forked, _cpu_threads(config.cpu_threads):
        torch.manual_seed(config.seed)
        net = PriceNet(spec, config.hidden).to(device)
        fit = _optimize(
            net,
            (x_train[~held_out], y_train[~held_out]),
            (x_train[held_out], y_train[held_out]),
            config,
            device,
            progress,
        )
    net = net.cpu().eval()

    baseline = ZipMedianBaseline.fit(train_rows)
    actual = val_rows.column("price").to_numpy(zero_copy_only=False)
    return TrainResult(
        net=net,
        spec=spec,
        config=config,
        metrics=price_metrics(actual, predict_prices(net, encode(val_rows, spec))),
        baseline=price_metrics(actual, baseline.predict(val_rows)),
        train_metrics=price_metrics(
            train_rows.column("price").to_numpy(zero_copy_only=False), predict_prices(net, x_train)
        ),
        data_version=data_version(table),
        rows={
            "input": listings.num_rows,
            "used": table.num_rows,
            "train": train_rows.num_rows,
            "validation": val_rows.num_rows,
            "early_stopping": int(held_out.sum()),
        },
        device=str(device),
        bf16=device.type == "cuda",
        seconds=fit.seconds,
        validation=val_rows,
        losses=fit.losses,
        best_epoch=fit.best_epoch,
    )


def early_stopping_mask(hashes: np.ndarray, percent: int) -> np.ndarray:
    """True for training rows held out to choose the epoch: hash bits independent of the split's bucket."""
    return ((hashes // np.uint64(100)) % np.uint64(100)) < np.uint64(percent)


@dataclass(frozen=True, slots=True)
class _Fit:
    losses: list[float]
    best_epoch: int
    seconds: float


def _optimize(
    net: PriceNet,
    fitted: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    config: TrainConfig,
    device: torch.device,
    progress: Progress | None,
) -> _Fit:
    """AdamW with a one-cycle schedule and an L1 loss on normalized log price, early-stopped on
    ``held_out``; leaves ``net`` with the weights of the best epoch.

    L1 in log space is the closest smooth-enough proxy for MAPE: for errors
    of a few tens of percent ``|log(p/a)|`` and ``|p - a| / a`` nearly agree.
    The early-stopping MAPE is computed on the device from the log-price
    outputs, so an epoch's check costs one forward pass, no host copy.
    """
    on_cuda = device.type == "cuda"
    x, y = fitted
    inputs, targets = _to_device(torch.from_numpy(x), device), _to_device(torch.from_numpy(y), device)
    check_x, check_y = (_to_device(torch.from_numpy(a), device) for a in held_out)
    epochs = config.planned_epochs(len(x))
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=epochs * steps_per_epoch
    )
    shuffle = torch.Generator().manual_seed(config.seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    losses: list[float] = []
    best, best_epoch, best_state = math.inf, 0, None
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
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
        losses.append(float(total) / len(x))
        mape = _holdout_mape(net, check_x, check_y) if len(check_x) else None
        if mape is None or mape < best:
            best, best_epoch = (math.inf if mape is None else mape), epoch
            best_state = None if mape is None else {k: v.clone() for k, v in net.state_dict().items()}
        if progress is not None:
            progress(EpochReport(epoch, epochs, losses[-1], mape, best_epoch, time.perf_counter() - started))
        if mape is not None and config.patience and epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    if on_cuda:
        torch.cuda.synchronize(device)
    return _Fit(losses, best_epoch, time.perf_counter() - started)


def _holdout_mape(net: PriceNet, x: torch.Tensor, y: torch.Tensor) -> float:
    """MAPE of ``net`` on normalized log-price targets ``y``: mean of ``|exp(std * (p - y)) - 1|``."""
    net.eval()
    with torch.inference_mode():
        predicted = torch.cat([net(chunk).float() for chunk in x.split(16_384)])
        return float(torch.mean(torch.abs(torch.expm1(net.target_std * (predicted - y)))))


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
