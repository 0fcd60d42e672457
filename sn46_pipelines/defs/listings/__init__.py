"""The listings domain: miner uploads in, curated partitions, aggregates, scores and validator views out."""

import dagster as dg

from ...config import Settings
from .aggregates import listing_aggregates, validator_views, views_follow_aggregates
from .ingest import ingest_job, miner_hotkeys, miner_listings
from .uploads import upload_sensor

__all__ = [
    "build_defs",
    "ingest_job",
    "listing_aggregates",
    "miner_hotkeys",
    "miner_listings",
    "upload_sensor",
    "validator_views",
]


def build_defs(settings: Settings) -> dg.Definitions:
    """The domain's assets, checks, job and upload sensor for one environment."""
    return dg.Definitions(
        assets=[miner_listings, listing_aggregates, validator_views],
        asset_checks=[views_follow_aggregates],
        jobs=[ingest_job],
        sensors=[upload_sensor(settings.automation)],
    )
