"""The training process Dagster launches through Pipes: ``python -m sn46_pipelines.pricemodel.pipes_train``.

It reads everything from Pipes extras (store URLs, the training config),
reads the passing miners' listings from the data store itself, trains,
commits the checkpoint to the model store and reports the version and
metrics back as the ``price_model`` materialization, with the baseline
check's result. Because it needs only the two store URLs, the same command
runs as a local subprocess or in a GPU pod (``PipesK8sClient``; see
docs/training.md): no file is shared with the Dagster process.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

from dagster_pipes import PipesContext, open_dagster_pipes

from .rules import RULES

if TYPE_CHECKING:  # torch loads with .train: keep it out of the Dagster process that imports CHECK_NAMES
    from ..modelstore import VersionRecord
    from .train import TrainResult

#: The blocking asset checks on ``price_model``, one per deployment-gate rule.
CHECK_NAMES: tuple[str, ...] = tuple(RULES)
#: The check that was price_model's only one before the gate: the zip-median baseline.
CHECK_NAME = CHECK_NAMES[-1]


def run(pipes: PipesContext) -> None:
    """Train on the data store's listings, gate, compare with the pin and commit; report to ``pipes``.

    Stores open through this process's environment (``SN46_ENV``, inherited
    from the launching process or set on the pod or task), so they get its
    endpoint, region and object-store keys; secrets never travel in extras.
    Each epoch's loss and early-stopping MAPE go to the run's log while
    training runs.
    """
    from ..config import load_settings
    from ..listings.views import StaleAggregatesError, training_listings
    from ..modelstore import ModelStore
    from .checkpoint import commit_checkpoint
    from .gate import GateThresholds
    from .train import TooFewListingsError, TrainConfig, train

    extras = pipes.extras
    config = TrainConfig(**extras["config"])
    settings = load_settings()
    try:
        listings = training_listings(settings.open_store(extras["data_store"]))
    except StaleAggregatesError as exc:  # an ingest landed after the aggregates: they run again next
        report_skipped(pipes, str(exc), 0)
        return
    pipes.log.info(f"training on {listings.num_rows} listings with {config}")
    try:
        result = train(listings, config, progress=lambda epoch: pipes.log.info(epoch.line()))
    except TooFewListingsError as exc:
        report_skipped(pipes, str(exc), listings.num_rows)
        return
    pipes.log.info(
        f"kept epoch {result.best_epoch} of {len(result.losses)}: "
        f"validation MAPE {result.metrics['mape']:.4f}"
    )
    inference = settings.inference
    with tempfile.TemporaryDirectory(prefix="sn46-checkpoint-") as folder:
        record = commit_checkpoint(
            ModelStore(settings.open_store(extras["model_store"])),
            result,
            folder,
            thresholds=GateThresholds(**settings.model_gate.model_dump()),
            pin=inference.pin if inference.mode == "pinned" else None,
        )
    gate = record.metadata["gate"]
    failed = [name for name, rule in gate["rules"].items() if not rule["passed"]]
    verdict = f"failed {', '.join(failed)}" if failed else "passed"
    pipes.log.info(f"committed {record.version_id}: deployment gate {verdict}")
    pipes.report_asset_materialization(
        metadata=materialization_metadata(record, result), data_version=record.version_id
    )
    for name in CHECK_NAMES:
        rule = gate["rules"][name]
        values = {k: v for k, v in rule.items() if k not in ("passed", "summary") and v is not None}
        pipes.report_asset_check(
            check_name=name,
            passed=rule["passed"],
            severity="ERROR",
            metadata={"summary": rule["summary"], **values, "version_id": record.version_id},
        )


def report_skipped(pipes: PipesContext, reason: str, rows: int) -> None:
    """No model this time: a successful materialization that says why, and a warning on every check.

    Too little data is the normal state of a new subnet or a quiet day, and
    aggregates older than an ingest the normal state between an ingest and
    the next aggregates run (which asks for training again): neither is a
    failure. The pin moves only on a new version, so nothing is deployed.
    """
    pipes.log.warning(f"no model trained: {reason}")
    pipes.report_asset_materialization(metadata={"skipped": reason, "input_rows": rows})
    for name in CHECK_NAMES:
        pipes.report_asset_check(check_name=name, passed=False, severity="WARN", metadata={"skipped": reason})


def materialization_metadata(record: VersionRecord, result: TrainResult) -> dict[str, Any]:
    """Flat, typed values the Dagster UI shows and plots per materialization."""
    return {
        "version_id": record.version_id,
        "record_hash": record.record_hash,
        **{f"val_{name}": value for name, value in result.metrics.items()},
        "baseline_mape": result.baseline["mape"],
        "beats_baseline": result.beats_baseline,
        "gate_passed": record.metadata["gate"]["passed"],
        **_compared(record.metadata.get("compared_with")),
        "epochs": len(result.losses),
        "best_epoch": result.best_epoch,
        "train_rows": result.rows["train"],
        "validation_rows": result.rows["validation"],
        "data_version": result.data_version,
        "code_version": record.metadata["code_version"],
        "device": result.device,
        "train_seconds": round(result.seconds, 3),
        "samples_per_second": round(result.samples_per_second, 1),
        "config": {"raw_value": result.config.to_dict(), "type": "json"},
    }


def _compared(compared: dict[str, Any] | None) -> dict[str, Any]:
    """The pinned model's score on this model's validation rows, as the UI shows it."""
    if not compared:
        return {}
    if "mape" in compared:
        return {"pinned_version": compared["version_id"], "pinned_mape_same_rows": compared["mape"]}
    return {"pinned_version": compared["version_id"], "pinned_not_compared": compared["error"]}


def main() -> None:
    with open_dagster_pipes() as pipes:
        run(pipes)


if __name__ == "__main__":
    main()
