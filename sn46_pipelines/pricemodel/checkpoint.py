"""A checkpoint on disk and in the model store: four files and the metadata that makes a version auditable.

``model.pt``            state dict of :class:`PriceNet` (learned weights only; load with ``weights_only``)
``model.onnx``          the same network, dollars out (see :mod:`.export`)
``feature_config.json`` how to build the input vector, the normalization, and the network's width
``metrics.json``        validation metrics of the model and of the zip-median baseline

The commit's metadata adds the data version (a hash of the training
listings), the code version (a hash of this package's source), the config
and the metrics, so any served model can be traced to what made it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..modelstore import ModelStore, VersionRecord
from .deploy import compare_with_pin
from .export import export_onnx, verify_onnx
from .features import encode
from .gate import GateReport, GateThresholds, evaluate_gate
from .layout import FEATURE_CONFIG, KIND, METRICS, ONNX, WEIGHTS
from .train import TrainResult


def write_checkpoint(result: TrainResult, folder: str | os.PathLike[str]) -> Path:
    """Write the four checkpoint files of ``result`` into ``folder`` (created if needed).

    The ONNX file is run in onnxruntime against torch first (:func:`verify_onnx`,
    on the validation rows): a checkpoint whose exported graph disagrees with
    its weights, or whose network prices real listings as inf, is refused.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(result.net.state_dict(), folder / WEIGHTS)
    export_onnx(result.net, folder / ONNX)
    verify_onnx(result.net, result.spec, folder / ONNX, rows=encode(result.validation, result.spec))
    config = {**result.spec.to_dict(), "model": {"architecture": "mlp-2x-silu", "hidden": result.net.hidden}}
    _write_json(folder / FEATURE_CONFIG, config)
    _write_json(folder / METRICS, metrics_document(result))
    return folder


def metrics_document(result: TrainResult) -> dict[str, Any]:
    """``metrics.json``: deterministic for a seed (no timings), so identical runs write identical files."""
    return {
        "validation": result.metrics,
        "baseline": {"name": "zip_median", **result.baseline},
        "beats_baseline": result.beats_baseline,
        "train": result.train_metrics,
        "rows": result.rows,
        "data_version": result.data_version,
    }


def commit_metadata(
    result: TrainResult, gate: GateReport | None = None, compared_with: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the model-store record says about the version (and the Dagster materialization shows).

    ``gate`` is the deployment gate's verdict and ``compared_with`` the pinned
    model's score on this model's validation rows: what :func:`.deploy.promote` decides by.
    """
    return {
        "kind": KIND,
        "data_version": result.data_version,
        "code_version": code_version(),
        "config": result.config.to_dict(),
        "metrics": result.metrics,
        "baseline": result.baseline,
        "beats_baseline": result.beats_baseline,
        "rows": result.rows,
        "training": {
            "device": result.device,
            "bf16": result.bf16,
            "seconds": round(result.seconds, 4),
            "samples_per_second": round(result.samples_per_second, 1),
            "epochs": len(result.losses),
            "best_epoch": result.best_epoch,
        },
        **({"gate": gate.to_dict()} if gate is not None else {}),
        **({"compared_with": compared_with} if compared_with is not None else {}),
    }


def commit_checkpoint(
    store: ModelStore,
    result: TrainResult,
    folder: str | os.PathLike[str],
    *,
    thresholds: GateThresholds = GateThresholds(),
    pin: str | None = None,
    message: str = "",
    retries: int = 5,
) -> VersionRecord:
    """Write the checkpoint into ``folder``, run the deployment gate on it, score the model ``pin``
    points at on the same validation rows (if ``pin`` is given and pinned), and commit it all: the
    record's metadata holds the verdicts under ``gate`` and ``compared_with``.

    Every trained model is committed, passing or not, so any verdict can be
    audited later; only :func:`.deploy.promote` decides what is served.
    ``retries`` re-tries a lost race for the counter.
    """
    write_checkpoint(result, folder)
    gate = evaluate_gate(result, Path(folder) / ONNX, thresholds)
    compared = compare_with_pin(store, pin, result.validation) if pin else None
    return store.commit(
        folder,
        message=message or _message(result),
        metadata=commit_metadata(result, gate, compared),
        retries=retries,
    )


def code_version() -> str:
    """``sha256:`` of this package's Python source: changes exactly when the model code does."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\x00" + path.read_bytes() + b"\x00")
    return f"sha256:{digest.hexdigest()}"


def _message(result: TrainResult) -> str:
    return (
        f"price model: validation MAPE {result.metrics['mape']:.4f} "
        f"(zip-median baseline {result.baseline['mape']:.4f}) on {result.rows['train']} listings"
    )


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n")
