"""Dagster jobs: named selections of assets that sensors, schedules and people launch."""

from __future__ import annotations

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("miner_listings"),
    description="Validate and curate one miner's new uploads (one hotkey partition per run).",
)
