"""``listing_aggregates`` (with its blocking checks) and ``validator_views``.

Thin on purpose: the computing, checking and view building live in
``sn46_pipelines.listings`` (no Dagster there); these assets wire them to
the data store and to the instance (known partitions, ingest metadata).
"""

import tempfile
from pathlib import Path

import dagster as dg

from ..listings.aggregate_checks import (
    CheckOutcome,
    check_keys,
    check_known_hotkeys,
    check_row_counts,
    check_schema,
    check_scores,
)
from ..listings.aggregates import Aggregates, aggregate_store, write_aggregates
from ..listings.views import VIEWS_FILE_KEY, write_views_file
from ..resources import DataStoreResource
from .ingest import miner_hotkeys, miner_listings

#: Check name -> what it guards. All block: each failure would put wrong scores or rows into training.
CHECKS: dict[str, str] = {
    "schema": "Every aggregate table has its contract columns and types.",
    "no_null_keys": "No key column (hotkey, job_id, zip_code, copy provenance) is null.",
    "scores_in_range": "Every hotkey has a score in [0, 1].",
    "hotkeys_are_partitions": "Every scored hotkey is a miner_hotkeys partition.",
    "rows_reconcile": "Each hotkey's curated rows equal the curated_rows its last miner_listings "
    "run reported.",
}


class AggregatesConfig(dg.Config):
    """DuckDB settings a data engineer may change per run from the launchpad."""

    #: DuckDB spills to disk beyond this; 10 million curated rows fit in 2 GB.
    memory_limit: str = "2GB"


#: Materializations of one partition fetched per query while looking for the last ``curated_rows``.
_PAGE = 20


@dg.asset(
    deps=[miner_listings],
    group_name="aggregates",
    kinds={"duckdb", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="listing_aggregates", description=text, blocking=True)
        for name, text in CHECKS.items()
    ],
    description="Cross-miner copies, per-miner and per-job quality, per-zip prices and miner scores, "
    "computed in DuckDB over every committed miner_listings partition; published under aggregates/ "
    "only when every check passes (else written to aggregates/rejected/).",
)
def listing_aggregates(
    context: dg.AssetExecutionContext, config: AggregatesConfig, data_store: DataStoreResource
) -> dg.MaterializeResult:
    store = data_store.open()
    aggregates = aggregate_store(store, memory_limit=config.memory_limit)
    outcomes = _check(context.instance, aggregates)
    prefix = write_aggregates(store, aggregates, publish=all(o.passed for o in outcomes.values()))
    context.log.info(f"aggregates of {len(aggregates.hotkeys)} hotkeys written under {prefix}")
    return dg.MaterializeResult(
        metadata={**aggregates.summary(), "prefix": prefix},
        check_results=[
            dg.AssetCheckResult(
                check_name=name, passed=o.passed, description=o.description, metadata=o.metadata
            )
            for name, o in outcomes.items()
        ],
    )


@dg.asset(
    deps=[listing_aggregates],
    group_name="aggregates",
    kinds={"duckdb"},
    description=f"The DuckDB file validators download ({VIEWS_FILE_KEY}): listings, quarantine, "
    "miner_scores, miner_job_stats, zipcode_stats and cross_miner_duplicates as tables.",
)
def validator_views(context: dg.AssetExecutionContext, data_store: DataStoreResource) -> dg.MaterializeResult:
    store = data_store.open()
    with tempfile.TemporaryDirectory(prefix="sn46-views-") as folder:
        path = Path(folder) / "sn46.duckdb"
        rows = write_views_file(store, path)
        size = path.stat().st_size
        store.upload(VIEWS_FILE_KEY, path)
    context.log.info(f"uploaded {VIEWS_FILE_KEY} ({size} bytes)")
    return dg.MaterializeResult(
        metadata={"key": VIEWS_FILE_KEY, "bytes": size, **{f"{name}_rows": n for name, n in rows.items()}}
    )


def _check(instance: dg.DagsterInstance, aggregates: Aggregates) -> dict[str, CheckOutcome]:
    """Run every check of :data:`CHECKS` on the in-memory tables, before anything is published."""
    return {
        "schema": check_schema(aggregates),
        "no_null_keys": check_keys(aggregates),
        "scores_in_range": check_scores(aggregates),
        "hotkeys_are_partitions": check_known_hotkeys(
            aggregates, instance.get_dynamic_partitions(miner_hotkeys.name)
        ),
        "rows_reconcile": check_row_counts(
            aggregates, {h: _reported_curated_rows(instance, h) for h in aggregates.hotkeys}
        ),
    }


def _reported_curated_rows(instance: dg.DagsterInstance, hotkey: str) -> int | None:
    """``curated_rows`` of the hotkey's latest ``miner_listings`` materialization that has one.

    A run that found no new files reports no ``curated_rows``, so older
    materializations are searched, newest first.
    """
    records_filter = dg.AssetRecordsFilter(asset_key=miner_listings.key, asset_partitions=[hotkey])
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=_PAGE, cursor=cursor)
        for record in page.records:
            value = record.asset_materialization.metadata.get("curated_rows")
            if value is not None:
                return int(value.value)
        if not page.has_more:
            return None
        cursor = page.cursor
