"""``price_model`` (trained through Dagster Pipes, with a blocking baseline check) and ``inference_pin``.

Thin on purpose: training is the ``pricemodel`` library run as a Pipes child
(:mod:`sn46_pipelines.pricemodel.pipes_train`) by the ``training_launcher``
resource, which puts it in a local process, a GPU pod or an ECS task as the
deployment says (``SN46_TRAINING_LAUNCHER``); deployment is
:func:`sn46_pipelines.pricemodel.deploy.promote`.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from ...config import load_settings
from ...pricemodel.rules import RULES
from ..listings import listing_aggregates
from ..metadata import rounded, ui_metadata
from ..resources import DataStoreResource, ModelStoreResource
from .launcher import TrainingLauncher


class PriceModelConfig(dg.Config):
    """Training settings a trainer sets in the launchpad; the defaults fit the demo in seconds on a CPU."""

    epochs: int = Field(
        0, description="passes over the training listings; 0: as many as `steps` optimizer steps take"
    )
    steps: int = Field(3000, description="optimizer steps to plan for when epochs is 0 (at most 300 epochs)")
    patience: int = Field(
        25, description="stop after this many epochs without a better early-stopping MAPE; 0: never"
    )
    learning_rate: float = Field(3e-3, description="peak of the one-cycle schedule (AdamW)")
    batch_size: int = Field(128, description="listings per optimizer step")
    hidden: int = Field(128, description="width of the MLP's two hidden layers")
    device: str = Field(
        "auto", description="auto (CUDA with bf16 autocast when present), cpu, cuda or cuda:N"
    )
    row_limit: int = Field(
        0, description="train on a fixed hash sample of at most this many listings; 0: all"
    )
    seed: int = Field(
        0, description="initialization and shuffling; same seed and data give the same model on CPU"
    )


class InferencePinConfig(dg.Config):
    """Which version ``deploy_job`` deploys, and whether the safety rule may be overridden."""

    force: bool = Field(False, description="move the pin even if the model failed the check or is worse")
    version: str = Field(
        "", description="deploy this version (v0000000012 or 12) instead of the latest price_model"
    )


#: Who answers for the model assets.
OWNERS = ["team:ml"]


@dg.asset(
    deps=[listing_aggregates],
    group_name="training",
    owners=OWNERS,
    kinds={"pytorch", "onnx"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="price_model", blocking=True, description=description)
        for name, description in RULES.items()
    ],
    description="A torch price regressor on log price, trained on the accepted listings of passing miners "
    "in a Pipes child (a local process, a GPU pod or an ECS task) and committed to the model store "
    "(model.pt, model.onnx, feature_config.json, metrics.json).",
)
def price_model(
    context: dg.AssetExecutionContext,
    config: PriceModelConfig,
    data_store: DataStoreResource,
    model_store: ModelStoreResource,
    training_launcher: TrainingLauncher,
) -> dg.MaterializeResult:
    # What the aggregates counted when training started: the automation's "enough new rows" compares
    # the next aggregates with this (defs/automation.py).
    seen = _latest_metadata(context.instance, listing_aggregates.key, "rows_accepted")
    result = training_launcher.run(
        context,
        data_store=data_store.open().url,
        model_store=model_store.open().url,
        config=config.model_dump(),
    ).get_materialize_result()
    return result._replace(metadata={**rounded(result.metadata or {}), ELIGIBLE_ROWS: int(seen or 0)})


#: ``price_model`` metadata: the aggregates' accepted rows when it trained.
ELIGIBLE_ROWS = "eligible_rows"


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, name: str) -> Any:
    event = instance.get_latest_materialization_event(key)
    value = event.asset_materialization.metadata.get(name) if event and event.asset_materialization else None
    return None if value is None else value.value


@dg.asset(
    deps=[price_model],
    group_name="training",
    owners=OWNERS,
    kinds={"python"},
    pool="sn46_inference_pin",
    description="The environment's inference pin (inference.pin, e.g. prod): moved to the newest price model "
    "only if it passed every deployment-gate check and, scored on its own validation rows, is no worse than "
    "the pinned model on those same rows; an empty pin moves only through the gate too. In tracking mode "
    "(inference.mode) the pin follows the head.",
)
def inference_pin(
    context: dg.AssetExecutionContext, config: InferencePinConfig, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    from ...pricemodel.deploy import promote

    inference = load_settings().inference
    skipped = _latest_metadata(context.instance, price_model.key, "skipped")
    if not config.version and skipped:
        context.log.info(f"kept pin {inference.pin}: price_model trained no model ({skipped})")
        return dg.MaterializeResult(
            metadata={
                "pin": inference.pin,
                "moved": False,
                "reason": f"price_model trained no model: {skipped}",
            }
        )
    candidate = config.version or _latest_trained_version(context.instance)
    decision = promote(model_store.open(), candidate, inference.pin, mode=inference.mode, force=config.force)
    context.log.info(f"{'moved' if decision.moved else 'kept'} pin {decision.pin}: {decision.reason}")
    return dg.MaterializeResult(metadata=ui_metadata(decision.to_dict()))


def _latest_trained_version(instance: dg.DagsterInstance) -> str:
    version = _latest_metadata(instance, price_model.key, "version_id")
    if version is None:
        raise dg.Failure(
            "price_model has never been materialized here: run train_job first, or set `version`"
        )
    return str(version)
