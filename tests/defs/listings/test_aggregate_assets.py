"""``listing_aggregates`` and ``validator_views`` on a real Dagster instance.

One instance for the module and one ``materialize`` per test (sqlite instances
flake under many materializations, dagster #18727).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest

from sn46_pipelines.defs.listings.aggregates import (
    CHECKS,
    PASSING_COLLAPSE,
)
from sn46_pipelines.defs.listings.ingest import miner_hotkeys, miner_listings
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.listings.layout import VIEWS_FILE_KEY
from sn46_pipelines.listings.views import VIEW_NAMES
from tests.defs.listings.runs import build_aggregates
from tests.listings.aggregates.aggregates_fixtures import commit, listing, rows_of, upload


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def report_ingest(instance: dg.DagsterInstance, hotkey: str, metadata: dict) -> None:
    """Record a ``miner_listings`` run of ``hotkey`` as the sensor-driven ingest would."""
    instance.add_dynamic_partitions(miner_hotkeys.name, [hotkey])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=miner_listings.key, partition=hotkey, metadata=metadata)
    )


def check_results(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_demo_uploads_to_validator_views(instance, folder_store, tmp_path):
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    report = seed_demo(folder_store, miners=4, validators=1, seed=3, now=now)
    for miner in report.miners:
        report_ingest(instance, miner.hotkey, ingest_hotkey(folder_store, miner.hotkey, now=now).metadata())
    donor, copier = report.miners[0].hotkey, report.miners[2].hotkey
    assert "copied_rows" in report.miners[2].defects

    result = build_aggregates(instance, folder_store)

    assert result.success
    assert materialized(result) == {"listing_aggregates", "validator_views"}
    checks = check_results(result)
    assert set(checks) == {*CHECKS, PASSING_COLLAPSE}
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}
    path = tmp_path / "downloaded.duckdb"
    folder_store.download(VIEWS_FILE_KEY, path)
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {r[0] for r in con.sql("select table_name from information_schema.tables").fetchall()}
        assert tables == set(VIEW_NAMES)
        assert con.execute("select count(*) from miner_scores").fetchall()[0][0] == 4
        copies = con.sql("select hotkey, original_hotkey, count(*) from cross_miner_duplicates group by all")
        assert copies.fetchall() == [(copier, donor, 40)]
        [(accepted, curated, copy_rate, submitted)] = con.execute(
            "select rows_accepted, curated_rows, copy_rate, rows_submitted"
            " from miner_scores where hotkey = ?",
            [copier],
        ).fetchall()
        assert (curated - accepted, copy_rate) == (40, pytest.approx(40 / submitted))
        reasons = con.execute("select reasons from miner_scores where hotkey = ?", [copier]).fetchall()[0][0]
        assert "copies" in reasons  # 40 copied rows are more than 1% of what it submitted


def test_a_hotkey_that_is_no_partition_blocks_the_views(instance, folder_store):
    commit(folder_store, "known", rows_of(upload("known"), listing("1"), listing("2")))
    commit(folder_store, "stranger", rows_of(upload("stranger"), listing("3")))
    report_ingest(instance, "known", {"curated_rows": 2})

    result = build_aggregates(instance, folder_store)

    assert not result.success
    checks = check_results(result)
    assert not checks["hotkeys_are_partitions"].passed
    assert "stranger" in checks["hotkeys_are_partitions"].description
    assert checks["schema"].passed and checks["scores_in_range"].passed
    assert materialized(result) == {"listing_aggregates"}  # validator_views never ran
    assert not folder_store.exists(VIEWS_FILE_KEY)
    # the checked-out tables are kept for inspection, not published
    assert folder_store.exists("aggregates/rejected/miner_scores.parquet")
    assert not folder_store.exists("aggregates/miner_scores.parquet")


def test_row_counts_that_do_not_reconcile_block_the_views(instance, folder_store):
    commit(folder_store, "early", rows_of(upload("early"), listing("1"), listing("2"), listing("3")))
    report_ingest(instance, "early", {"curated_rows": 3})
    report_ingest(instance, "early", {"files_processed": 0})  # a later run with nothing new
    commit(folder_store, "late", rows_of(upload("late"), listing("4")))
    report_ingest(instance, "late", {"curated_rows": 2})

    result = build_aggregates(instance, folder_store)

    checks = check_results(result)
    assert not checks["rows_reconcile"].passed
    assert checks["rows_reconcile"].description.endswith("late: 1 curated rows, miner_listings reported 2")
    assert materialized(result) == {"listing_aggregates"}
