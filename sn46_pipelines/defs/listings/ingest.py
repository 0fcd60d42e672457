"""``miner_listings``: one partition per miner hotkey, validated and curated, with its checks and job."""

from datetime import timedelta

import dagster as dg

from ...listings.ingest import ingest_hotkey
from ...listings.rules import Rules
from ...listings.schema import CURATED_SCHEMA
from ..metadata import table_metadata, ui_metadata
from ..resources import DataStoreResource

#: Who answers for the listing assets (shown in the UI, filterable in the catalog).
OWNERS = ["team:data-engineering"]

#: The dynamic partitions of ``miner_listings``: one per hotkey that ever uploaded.
HOTKEY_PARTITIONS = "miner_hotkeys"
miner_hotkeys = dg.DynamicPartitionsDefinition(name=HOTKEY_PARTITIONS)

#: Above this share of rejected rows in one run, the miner's upload is flagged (a warning, not a block).
MAX_REJECTED_SHARE = 0.5

#: Check name -> what it watches. Warnings: a miner's bad upload is the miner's problem, and its
#: rejected rows are already quarantined; the checks make it visible without holding anything back.
CHECKS: dict[str, str] = {
    "rejected_row_share": f"At most {MAX_REJECTED_SHARE:.0%} of the rows read in this run were rejected.",
    "no_file_rejected_whole": "No upload of this run was rejected whole (unreadable, wrong schema, bad key).",
}


class IngestConfig(dg.Config):
    """Curation settings a data engineer may change per run from the launchpad."""

    freshness_days: int = 30


@dg.asset(
    partitions_def=miner_hotkeys,
    group_name="listings",
    owners=OWNERS,
    kinds={"parquet", "python"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="miner_listings", description=text) for name, text in CHECKS.items()
    ],
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
    values = report.metadata()
    rows_in = int(values.get("rows_in") or 0)
    rejected = int(values.get("rows_rejected") or 0)
    files_rejected = int(values.get("files_rejected") or 0)
    share = rejected / rows_in if rows_in else 0.0
    table = table_metadata(values["curated_rows"], CURATED_SCHEMA) if "curated_rows" in values else {}
    return dg.MaterializeResult(
        metadata={**ui_metadata(values), **table},
        check_results=[
            dg.AssetCheckResult(
                check_name="rejected_row_share",
                passed=share <= MAX_REJECTED_SHARE,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected_share": round(share, 4), "rows_in": rows_in, "rows_rejected": rejected},
            ),
            dg.AssetCheckResult(
                check_name="no_file_rejected_whole",
                passed=files_rejected == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"files_rejected": files_rejected},
            ),
        ],
    )


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(miner_listings),
    description="Validate and curate one miner's new uploads (one hotkey partition per run).",
)
