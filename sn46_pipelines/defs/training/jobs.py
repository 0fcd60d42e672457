"""The training jobs people launch by hand: train with launchpad settings, deploy a chosen version."""

from __future__ import annotations

import dagster as dg

from ..tags import GPU_TAG

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets("price_model"),
    description="Train the price model (epochs, learning rate, batch size, hidden width, device and "
    "row limit in the launchpad) and commit the checkpoint to the model store.",
    tags={GPU_TAG: "true"},
)

deploy_job = dg.define_asset_job(
    "deploy_job",
    selection=dg.AssetSelection.assets("inference_pin"),
    description="Move the environment's inference pin to the newest price model if it passed its "
    "check and is no worse than the pinned one.",
)
