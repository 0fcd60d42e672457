"""``miner_listings``: one partition per miner hotkey, validated and curated."""


from datetime import timedelta

import dagster as dg

from ..listings.ingest import ingest_hotkey
from ..listings.rules import Rules
from ..resources import DataStoreResource

miner_hotkeys = dg.DynamicPartitionsDefinition(name="miner_hotkeys")


class IngestConfig(dg.Config):
    """Curation settings a data engineer may change per run from the launchpad."""

    freshness_days: int = 30


@dg.asset(
    partitions_def=miner_hotkeys,
    group_name="listings",
    kinds={"parquet"},
    description="A miner's uploads checked file by file and row by row; good rows curated, "
    "bad ones quarantined with a reason. Only files not processed before are read.",
)
def miner_listings(
    context: dg.AssetExecutionContext, config: IngestConfig, data_store: DataStoreResource
) -> dg.MaterializeResult:
    report = ingest_hotkey(
        data_store.open(), context.partition_key, rules=Rules(freshness=timedelta(days=config.freshness_days))
    )
    context.log.info(f"{len(report.new_files)} new files, {report.listings_rows} curated rows")
    return dg.MaterializeResult(metadata=report.metadata())
