"""The one Dagster ``Definitions`` object of the project (``workspace.yaml`` loads it)."""

import dagster as dg

from .assets.aggregates import listing_aggregates, validator_views
from .assets.ingest import miner_listings
from .assets.operations import model_store
from .assets.training import inference_pin, price_model
from .jobs import deploy_job, ingest_job, train_job
from .jobs.operations import (
    chain_verification_schedule,
    gc_job,
    nightly_gc_schedule,
    replication_check_job,
    replication_check_schedule,
    verify_chain_job,
)
from .resources import DataStoreResource, ModelStoreResource
from .sensors.uploads import miner_upload_sensor

defs = dg.Definitions(
    assets=[miner_listings, listing_aggregates, validator_views, price_model, inference_pin, model_store],
    jobs=[ingest_job, train_job, deploy_job, gc_job, verify_chain_job, replication_check_job],
    schedules=[nightly_gc_schedule, chain_verification_schedule, replication_check_schedule],
    sensors=[miner_upload_sensor],
    resources={
        "data_store": DataStoreResource(),
        "model_store": ModelStoreResource(),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
)
