"""The ingest through a real Dagster instance: sensor ticks, the per-hotkey asset, a whole pipeline pass."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.listings.ingest import miner_hotkeys, miner_listings
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.ingest import (
    ConcurrentIngestError,
    ingest_hotkey,
    read_manifest,
    read_table,
)
from sn46_pipelines.listings.keys import parse_upload_key, upload_key
from sn46_pipelines.listings.layout import manifest_key
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.pipeline import run_pipeline

miner_upload_sensor = upload_sensor(AutomationSettings())

NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def seeded(store):
    report = seed_demo(store, miners=4, validators=1, seed=7, now=NOW)
    return store, report


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance, store, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"data_store": DataStoreResource(url=store.url)}
    )
    return miner_upload_sensor(context)


def uploads_snapshot(store):
    return {(o.key, o.size, o.etag) for o in store.list("data/")}


def test_sensor_registers_hotkeys_and_requests_one_run_each(seeded, instance):
    store, report = seeded
    hotkeys = {m.hotkey for m in report.miners}
    result = tick(instance, store)
    assert {r.partition_key for r in result.run_requests} == hotkeys
    assert len({r.run_key for r in result.run_requests}) == len(hotkeys)
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == "miner_hotkeys" and set(add.partition_keys) == hotkeys


def test_sensor_skips_folders_that_are_not_hotkeys(seeded, instance):
    store, _ = seeded
    store.put("data/hotkey=..etc/job_id=x/data_20261120_101010_5.parquet", b"x")
    store.put("data/hotkey=NOTSS58/job_id=x/data_20261120_101010_5.parquet", b"x")
    result = tick(instance, store)
    keys = {r.partition_key for r in result.run_requests}
    assert not any("NOTSS58" in k or ".." in k for k in keys)
    assert all(
        not ("NOTSS58" in k or ".." in k) for k in result.dynamic_partitions_requests[0].partition_keys
    )


def test_store_outage_is_a_skipped_tick_not_a_crash(instance, moto_endpoint):
    result = tick(instance, open_store("s3://bucket-that-is-not-there"))
    assert result.run_requests == [] or not result.run_requests
    assert result.skip_reason.skip_message.startswith("data store unavailable: s3://bucket-that-is-not-there")
    assert result.cursor is None  # the cursor is kept as it was


def test_two_ticks_at_once_ask_for_the_same_runs(seeded, instance):
    """Racing ticks (a restart while one is in flight) produce identical run keys, which Dagster dedups."""
    store, _ = seeded
    results = [None, None]

    def run(i):
        results[i] = tick(instance, store)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.run_key for r in results[0].run_requests} == {r.run_key for r in results[1].run_requests}


def test_asset_curates_a_hotkey_once_and_leaves_uploads_alone(seeded, instance):
    store, report = seeded
    miner = next(m for m in report.miners if m.defects)
    instance.add_dynamic_partitions(miner_hotkeys.name, [miner.hotkey])
    before = uploads_snapshot(store)
    resources = {"data_store": DataStoreResource(url=store.url)}

    first = dg.materialize(
        [miner_listings], partition_key=miner.hotkey, instance=instance, resources=resources
    )
    meta = {
        k: v.value for k, v in first.asset_materializations_for_node("miner_listings")[0].metadata.items()
    }
    assert meta["files_processed"] == len(miner.files)
    assert meta["rows_accepted"] == meta["curated_rows"] > 0
    rejected = {k.removeprefix("rejected_"): v for k, v in meta.items() if k.startswith("rejected_") and v}
    assert rejected == miner.expected  # exactly the planted defects, under their reason codes

    second = dg.materialize(
        [miner_listings], partition_key=miner.hotkey, instance=instance, resources=resources
    )
    again = second.asset_materializations_for_node("miner_listings")[0].metadata
    assert again["files_processed"].value == 0  # idempotent: nothing new

    manifest = read_manifest(store, miner.hotkey)
    curated = read_table(store, manifest.listings_key)
    assert curated.num_rows == meta["curated_rows"]
    assert len(set(curated.column("zpid").to_pylist())) == curated.num_rows  # one row per zpid
    assert uploads_snapshot(store) == before  # the upload area is read only


def test_each_ingest_reports_its_checks_and_a_table_schema(seeded, instance):
    """Warnings, never blocks: a file rejected whole, and the share of rejected rows, per miner and run."""
    store, report = seeded
    resources = {"data_store": DataStoreResource(url=store.url)}
    instance.add_dynamic_partitions(miner_hotkeys.name, [m.hotkey for m in report.miners])
    for miner in report.miners:
        result = dg.materialize(
            [miner_listings], partition_key=miner.hotkey, instance=instance, resources=resources
        )
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert set(checks) == {"rejected_row_share", "no_file_rejected_whole"}
        assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
        meta = result.asset_materializations_for_node("miner_listings")[0].metadata
        assert checks["no_file_rejected_whole"].passed == (meta["files_rejected"].value == 0), miner.hotkey
        assert meta["dagster/row_count"].value == meta["curated_rows"].value
        assert "zpid" in {c.name for c in meta["dagster/column_schema"].value.columns}


def test_racing_ingests_of_one_hotkey_never_corrupt_it(seeded):
    store, report = seeded
    hotkey = report.miners[0].hotkey
    outcomes = []

    def run():
        try:
            outcomes.append(ingest_hotkey(open_store(store.url), hotkey, now=NOW))
        except ConcurrentIngestError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    manifest = read_manifest(store, hotkey)
    curated = read_table(store, manifest.listings_key)
    winners = [o for o in outcomes if not isinstance(o, ConcurrentIngestError)]
    assert winners, outcomes
    assert curated.num_rows == winners[0].listings_rows or curated.num_rows == winners[-1].listings_rows
    assert len(set(curated.column("zpid").to_pylist())) == curated.num_rows
    # Only the committed files remain next to the manifest.
    assert {o.key for o in store.list(f"curated/hotkey={hotkey}/")} == {
        f"curated/hotkey={hotkey}/manifest.json",
        manifest.listings_key,
        manifest.quarantine_key,
    }


@pytest.fixture
def pass_home(tmp_path, monkeypatch):
    """A fresh local instance for daemon-driven passes (``$SN46_HOME/.dagster_home``)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SN46_HOME", str(tmp_path))
    return tmp_path


def ingests(summary):
    return [run["hotkey"] for run in summary.runs if run["hotkey"]]


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_a_new_file_after_a_pass_is_ingested_by_the_next(seeded, pass_home, monkeypatch):
    store, report = seeded
    monkeypatch.setenv("SN46_DATA_STORE", store.url)
    first = run_pipeline()
    assert first.ok, first.failed
    assert set(first.hotkeys) == {m.hotkey for m in report.miners}
    assert {"listing_aggregates", "validator_views"} <= set(first.downstream)
    assert run_pipeline().runs == []  # nothing new: no runs, and nothing downstream is rebuilt
    miner = report.miners[0]
    source = parse_upload_key(miner.files[0].key)
    newer = upload_key(miner.hotkey, source.job_id, source.timestamp + timedelta(seconds=1), source.rows)
    store.copy(source.key, newer)
    third = run_pipeline()
    assert ingests(third) == [miner.hotkey]
    assert third.hotkeys[miner.hotkey]["files_processed"] == 1
    assert "listing_aggregates" in third.downstream  # the new rows reached the scores


def test_a_pass_over_an_unreachable_store_reports_failure(pass_home, monkeypatch, moto_endpoint):
    monkeypatch.setenv("SN46_DATA_STORE", "s3://bucket-that-is-not-there")
    summary = run_pipeline()
    assert not summary.ok
    assert "miner_upload_sensor: data store unavailable: s3://bucket-that-is-not-there" in summary.failed[0]
    assert summary.runs == [] and summary.downstream == {}


def test_an_unreadable_manifest_holds_back_only_its_own_hotkey(seeded, instance):
    store, report = seeded
    hotkeys = sorted(m.hotkey for m in report.miners)
    for hotkey in hotkeys:
        ingest_hotkey(store, hotkey, now=NOW)
    broken = hotkeys[0]
    store.put(manifest_key(broken), b"{not json")
    for hotkey in hotkeys:  # a new upload for everyone, seen by a sensor that lost its cursor
        info = next(f for f in store.list(f"data/hotkey={hotkey}/") if f.key.endswith(".parquet"))
        store.put(info.key.replace(".parquet", "_0123456789abcdef.parquet"), store.get(info.key))
    result = tick(instance, store)
    assert {r.partition_key for r in result.run_requests} == set(hotkeys[1:])
    store.delete_many([manifest_key(broken)])  # the documented repair: the next scan finds its uploads
    assert broken in {r.partition_key for r in tick(instance, store).run_requests}
