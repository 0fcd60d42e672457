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

if TYPE_CHECKING:  # torch loads with .train: keep it out of the Dagster process that imports CHECK_NAME
    from ..modelstore import VersionRecord
    from .train import TrainResult

#: Name of the blocking asset check, shared with the asset that declares it.
CHECK_NAME = "beats_zip_median_baseline"


def run(pipes: PipesContext) -> None:
    """Train on the data store's training listings and commit; report to ``pipes``.

    Stores open through this process's environment (``SN46_ENV``, inherited
    from the launching process or set on the pod or task), so they get its
    endpoint, region and object-store keys; secrets never travel in extras.
    """
    from ..config import load_settings
    from ..listings.views import training_listings
    from ..modelstore import ModelStore
    from .checkpoint import commit_checkpoint
    from .train import TooFewListingsError, TrainConfig, train

    extras = pipes.extras
    config = TrainConfig(**extras["config"])
    settings = load_settings()
    listings = training_listings(settings.open_store(extras["data_store"]))
    pipes.log.info(f"training on {listings.num_rows} listings with {config}")
    try:
        result = train(listings, config)
    except TooFewListingsError as exc:
        report_skipped(pipes, str(exc), listings.num_rows)
        return
    with tempfile.TemporaryDirectory(prefix="sn46-checkpoint-") as folder:
        record = commit_checkpoint(ModelStore(settings.open_store(extras["model_store"])), result, folder)
    pipes.log.info(f"committed {record.version_id}: validation MAPE {result.metrics['mape']:.4f}")
    pipes.report_asset_materialization(metadata=materialization_metadata(record, result), data_version=record.version_id)
    pipes.report_asset_check(
        check_name=CHECK_NAME,
        passed=result.beats_baseline,
        severity="ERROR",
        metadata={
            "model_mape": result.metrics["mape"],
            "baseline_mape": result.baseline["mape"],
            "version_id": record.version_id,
        },
    )


def report_skipped(pipes: PipesContext, reason: str, rows: int) -> None:
    """No model this time: a successful materialization that says why, and a warning on the check.

    Too little data is the normal state of a new subnet or a quiet day, not a
    failure; the pin moves only on a new version, so nothing is deployed.
    """
    pipes.log.warning(f"no model trained: {reason}")
    pipes.report_asset_materialization(metadata={"skipped": reason, "input_rows": rows})
    pipes.report_asset_check(
        check_name=CHECK_NAME, passed=False, severity="WARN", metadata={"skipped": reason}
    )


def materialization_metadata(record: VersionRecord, result: TrainResult) -> dict[str, Any]:
    """Flat, typed values the Dagster UI shows and plots per materialization."""
    return {
        "version_id": record.version_id,
        "record_hash": record.record_hash,
        **{f"val_{name}": value for name, value in result.metrics.items()},
        "baseline_mape": result.baseline["mape"],
        "beats_baseline": result.beats_baseline,
        "train_rows": result.rows["train"],
        "validation_rows": result.rows["validation"],
        "data_version": result.data_version,
        "code_version": record.metadata["code_version"],
        "device": result.device,
        "train_seconds": round(result.seconds, 3),
        "samples_per_second": round(result.samples_per_second, 1),
        "config": {"raw_value": result.config.to_dict(), "type": "json"},
    }


def main() -> None:
    with open_dagster_pipes() as pipes:
        run(pipes)


if __name__ == "__main__":
    main()
