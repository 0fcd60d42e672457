"""``listing_aggregates`` (with its blocking checks) and ``validator_views``.

Thin on purpose: the computing, checking and view building live in
``sn46_pipelines.listings`` (no Dagster there); these assets wire them to
the data store and to the instance (known partitions, ingest metadata).
"""

import tempfile
from pathlib import Path
from typing import Any

import dagster as dg

from ...listings.aggregate_checks import (
    CheckOutcome,
    check_keys,
    check_known_hotkeys,
    check_row_counts,
    check_schema,
    check_scores,
)
from ...listings.aggregates import Aggregates, aggregate_store, write_aggregates
from ...listings.layout import VIEWS_FILE_KEY
from ...listings.views import write_views_file
from ...metagraph import MetagraphSnapshotError, read_snapshot
from ...objectstore import ObjectStore
from ..metadata import markdown_table, metadata_int, newest_metadata_int, table_metadata, ui_metadata
from ..resources import DataStoreResource
from .ingest import HOTKEY_PARTITIONS, OWNERS, miner_listings

#: Check name -> what it guards. All block: each failure would put wrong scores or rows into training.
CHECKS: dict[str, str] = {
    "schema": "Every aggregate table has its contract columns and types.",
    "no_null_keys": "No key column (hotkey, job_id, zip_code, copy provenance) is null.",
    "scores_in_range": "Every hotkey has a score in [0, 1].",
    "hotkeys_are_partitions": "Every scored hotkey is a miner_hotkeys partition.",
    "rows_reconcile": "Each hotkey's curated rows equal the curated_rows its last miner_listings "
    "run reported.",
}
#: The warning check on the number of passing miners (it flags, it does not block).
PASSING_COLLAPSE = "passing_miners_stable"
#: A materialization with fewer than this share of the previous one's passing miners is flagged.
MIN_PASSING_SHARE = 0.5
#: Rows of the per-miner table shown in the UI (the full table is in the views file).
MINERS_SHOWN = 256
#: ``validator_views`` counts as stale this long after the aggregates it follows last changed.
VIEWS_FRESHNESS_MINUTES = 60


class AggregatesConfig(dg.Config):
    """DuckDB settings a data engineer may change per run from the launchpad."""

    #: DuckDB spills to disk beyond this; 10 million curated rows fit in 2 GB.
    memory_limit: str = "2GB"


#: Materializations of one partition fetched per query while looking for the last ``curated_rows``.
_PAGE = 20


@dg.asset(
    deps=[miner_listings],
    group_name="aggregates",
    owners=OWNERS,
    kinds={"duckdb", "parquet"},
    check_specs=[
        *(
            dg.AssetCheckSpec(name, asset="listing_aggregates", description=text, blocking=True)
            for name, text in CHECKS.items()
        ),
        dg.AssetCheckSpec(
            PASSING_COLLAPSE,
            asset="listing_aggregates",
            description=f"At least {MIN_PASSING_SHARE:.0%} of the miners that passed last time pass now "
            "(a warning: a collapse is more often a rule or upstream problem than cheating).",
        ),
    ],
    description="Cross-miner copies, per-miner and per-job quality, per-zip prices and miner scores, "
    "computed in DuckDB over every committed miner_listings partition; published under aggregates/ "
    "only when every blocking check passes (else written to aggregates/rejected/).",
)
def listing_aggregates(
    context: dg.AssetExecutionContext, config: AggregatesConfig, data_store: DataStoreResource
) -> dg.MaterializeResult:
    store = data_store.open()
    aggregates = aggregate_store(store, memory_limit=config.memory_limit)
    outcomes = _check(context.instance, aggregates)
    published = all(o.passed for o in outcomes.values())
    prefix = write_aggregates(store, aggregates, publish=published)
    context.log.info(f"aggregates of {len(aggregates.hotkeys)} hotkeys written under {prefix}")
    summary = aggregates.summary()
    scores = aggregates["miner_scores"]
    return dg.MaterializeResult(
        metadata={
            **ui_metadata({**summary, "prefix": prefix, "published": published}),
            **table_metadata(scores.num_rows, scores.schema),
            "miners": _miner_table(scores, _uids(store)),
        },
        check_results=[
            *(
                dg.AssetCheckResult(
                    check_name=name, passed=o.passed, description=o.description, metadata=o.metadata
                )
                for name, o in outcomes.items()
            ),
            _passing_check(context.instance, summary["passed"]),
        ],
    )


def _miner_table(scores: Any, uids: dict[str, int]) -> dg.MetadataValue:
    """Hotkey, uid, score, passed and reasons per miner, worst first: "why did miners fail" without SQL."""
    rows = sorted(scores.to_pylist(), key=lambda r: (r["passed"], r["score"] or 0.0, r["hotkey"]))
    shown = [
        (
            r["hotkey"],
            uids.get(r["hotkey"]),
            r["score"],
            "yes" if r["passed"] else "no",
            ", ".join(r["reasons"] or []),
        )
        for r in rows[:MINERS_SHOWN]
    ]
    return markdown_table(("hotkey", "uid", "score", "passed", "reasons"), shown)


def _uids(store: ObjectStore) -> dict[str, int]:
    """Hotkey -> uid from the data store's metagraph snapshot; nothing when it is missing or bad."""
    try:
        snapshot = read_snapshot(store)
    except MetagraphSnapshotError:
        return {}
    return {} if snapshot is None else {hotkey: neuron.uid for hotkey, neuron in snapshot.neurons.items()}


def _passing_check(instance: dg.DagsterInstance, passed: int) -> dg.AssetCheckResult:
    """Warn when the passing miners fell below half of the previous materialization's."""
    previous = newest_metadata_int(instance, dg.AssetKey("listing_aggregates"), "passed")
    collapsed = previous is not None and previous > 0 and passed < MIN_PASSING_SHARE * previous
    return dg.AssetCheckResult(
        check_name=PASSING_COLLAPSE,
        passed=not collapsed,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if not collapsed else f"{passed} miners pass, {previous} passed last time",
        metadata={
            "passing_miners": passed,
            **({"previously_passing": previous} if previous is not None else {}),
        },
    )


@dg.asset(
    deps=[listing_aggregates],
    group_name="aggregates",
    owners=OWNERS,
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
        metadata={
            "key": dg.MetadataValue.path(VIEWS_FILE_KEY),
            "url": dg.MetadataValue.url(store.url.rstrip("/") + "/" + VIEWS_FILE_KEY),
            "bytes": size,
            "dagster/row_count": rows.get("listings", 0),
            **{f"{name}_rows": n for name, n in rows.items()},
        }
    )


@dg.asset_check(
    asset=validator_views,
    name="views_follow_aggregates",
    # dagster types since_last_handled() for conditions of assets and checks alike: mypy cannot match it.
    automation_condition=dg.AutomationCondition.cron_tick_passed("*/15 * * * *").since_last_handled(),  # type: ignore[misc]
    description=f"The views file was rebuilt after the newest published aggregates, or at most "
    f"{VIEWS_FRESHNESS_MINUTES} minutes before them: validators never query scores older than that.",
)
def views_follow_aggregates(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return views_freshness(context.instance)


def views_freshness(instance: dg.DagsterInstance) -> dg.AssetCheckResult:
    """Compare the newest ``validator_views`` materialization with the newest published aggregates."""
    aggregates = instance.get_latest_materialization_event(listing_aggregates.key)
    views = instance.get_latest_materialization_event(validator_views.key)
    if aggregates is None:
        return dg.AssetCheckResult(passed=True, description="no aggregates yet: nothing to follow")
    if views is None:
        return dg.AssetCheckResult(
            passed=False, description="aggregates exist but the views were never built"
        )
    behind = aggregates.timestamp - views.timestamp
    return dg.AssetCheckResult(
        passed=behind <= VIEWS_FRESHNESS_MINUTES * 60,
        metadata={
            "views_built": dg.MetadataValue.timestamp(views.timestamp),
            "aggregates_built": dg.MetadataValue.timestamp(aggregates.timestamp),
            "minutes_behind": round(max(behind, 0.0) / 60, 1),
        },
    )


def _check(instance: dg.DagsterInstance, aggregates: Aggregates) -> dict[str, CheckOutcome]:
    """Run every check of :data:`CHECKS` on the in-memory tables, before anything is published."""
    return {
        "schema": check_schema(aggregates),
        "no_null_keys": check_keys(aggregates),
        "scores_in_range": check_scores(aggregates),
        "hotkeys_are_partitions": check_known_hotkeys(
            aggregates, instance.get_dynamic_partitions(HOTKEY_PARTITIONS)
        ),
        "rows_reconcile": check_row_counts(
            aggregates, {h: _reported_curated_rows(instance, h) for h in aggregates.hotkeys}
        ),
    }


def _reported_curated_rows(instance: dg.DagsterInstance, hotkey: str) -> int | None:
    """``curated_rows`` of the hotkey's latest ``miner_listings`` materialization that has one."""
    record = newest_curated_rows_record(instance, hotkey)
    materialization = record.asset_materialization if record else None
    return metadata_int(materialization.metadata.get("curated_rows")) if materialization else None


def newest_curated_rows_record(instance: dg.DagsterInstance, hotkey: str) -> dg.EventLogRecord | None:
    """The hotkey's newest ``miner_listings`` materialization that reports ``curated_rows``.

    A run that found no new files reports no ``curated_rows``, so older
    materializations are searched, newest first (and the run-history pruning
    keeps the one found).
    """
    records_filter = dg.AssetRecordsFilter(asset_key=miner_listings.key, asset_partitions=[hotkey])
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=_PAGE, cursor=cursor)
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is not None and "curated_rows" in materialization.metadata:
                return record
        if not page.has_more:
            return None
        cursor = page.cursor
