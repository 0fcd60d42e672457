"""The one Dagster ``Definitions`` object of the project (``workspace.yaml`` loads it)."""

from __future__ import annotations

import dagster as dg

from .assets.ingest import miner_listings
from .jobs import ingest_job
from .resources import DataStoreResource
from .sensors.uploads import miner_upload_sensor

defs = dg.Definitions(
    assets=[miner_listings],
    jobs=[ingest_job],
    sensors=[miner_upload_sensor],
    resources={"data_store": DataStoreResource()},
)
