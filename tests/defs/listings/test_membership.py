"""Miners come and go: the metagraph snapshot decides who is scored and which partitions exist."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregate_checks import check_known_hotkeys
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey, read_manifest
from sn46_pipelines.listings.layout import METAGRAPH_KEY
from sn46_pipelines.listings.views import connect_views
from sn46_pipelines.metagraph import (
    MetagraphSnapshot,
    MetagraphSnapshotError,
    registered_hotkeys,
)

NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
sensor = upload_sensor(AutomationSettings())


class Deployment:
    """The upload sensor's ticks applied to a real instance, and ingest of what they request."""

    def __init__(self, instance: dg.DagsterInstance, store) -> None:
        self.instance, self.store, self.cursor = instance, store, None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"data_store": DataStoreResource(url=self.store.url)},
        )
        result = sensor(context)
        self.cursor = result.cursor
        for change in result.dynamic_partitions_requests:
            if isinstance(change, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions("miner_hotkeys", list(change.partition_keys))
            else:
                for key in change.partition_keys:
                    self.instance.delete_dynamic_partition("miner_hotkeys", key)
        for request in result.run_requests:
            ingest_hotkey(self.store, request.partition_key, now=NOW + timedelta(hours=3))
        return result

    @property
    def partitions(self) -> set[str]:
        return set(self.instance.get_dynamic_partitions("miner_hotkeys"))


def register(store, snapshot: MetagraphSnapshot, without: set[str] = frozenset()) -> None:
    kept = {k: n for k, n in snapshot.neurons.items() if k not in without}
    moved = MetagraphSnapshot(snapshot.netuid, snapshot.block + 1, kept, 0)
    store.put(METAGRAPH_KEY, json.dumps(moved.to_json()).encode())


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_a_miner_that_leaves_is_retired_and_revived_when_it_registers_again(store, instance):
    report = seed_demo(store, miners=4, validators=1, seed=7, now=NOW)
    snapshot = MetagraphSnapshot.from_json(json.loads(store.get(METAGRAPH_KEY)))
    live = Deployment(instance, store)
    live.tick()
    everyone = {m.hotkey for m in report.miners}
    assert live.partitions == everyone
    leaver = report.miners[1].hotkey

    register(store, snapshot, without={leaver})
    result = live.tick()
    assert not result.run_requests
    assert live.partitions == everyone - {leaver}  # retired: the partitions follow the subnet
    aggregates = aggregate_store(store, now=NOW + timedelta(hours=3))
    assert leaver not in aggregates.hotkeys and aggregates.inactive == [leaver]  # no score
    assert check_known_hotkeys(aggregates, live.partitions).passed
    write_aggregates(store, aggregates)
    with connect_views(store) as con:  # validators no longer see its listings...
        assert not con.execute("SELECT count(*) FROM listings WHERE hotkey = ?", [leaver]).fetchall()[0][0]
    manifest = read_manifest(store, leaver)  # ...but its data stays, for audit
    assert store.head(manifest.listings_key).size > 0 and store.list(f"data/hotkey={leaver}/")

    register(store, snapshot)  # it registers again, and uploads the next round
    seed_demo(store, miners=4, validators=1, seed=7, now=NOW + timedelta(hours=2))
    result = live.tick()
    assert leaver in {r.partition_key for r in result.run_requests}
    assert live.partitions == everyone
    scores = aggregate_store(store, now=NOW + timedelta(hours=3))["miner_scores"].to_pylist()
    assert {row["hotkey"] for row in scores} == everyone and aggregates.summary()["hotkeys_inactive"] == 1


def test_a_leaving_miner_with_new_uploads_is_ingested_before_it_is_retired(store, instance):
    report = seed_demo(store, miners=2, validators=1, seed=7, now=NOW)
    snapshot = MetagraphSnapshot.from_json(json.loads(store.get(METAGRAPH_KEY)))
    leaver = report.miners[0].hotkey
    register(store, snapshot, without={leaver})
    live = Deployment(instance, store)
    result = live.tick()
    assert leaver in {r.partition_key for r in result.run_requests}  # nothing uploaded is lost
    assert read_manifest(store, leaver).processed
    live.tick()
    assert leaver not in live.partitions


def test_a_bad_snapshot_is_named_and_retires_nothing(store, instance):
    seed_demo(store, miners=2, validators=1, seed=7, now=NOW)
    live = Deployment(instance, store)
    live.tick()
    before = live.partitions
    store.put(METAGRAPH_KEY, b"{not json")
    with pytest.raises(MetagraphSnapshotError, match=r"metagraph\.json: not a metagraph snapshot"):
        registered_hotkeys(store)
    live.tick()  # the sensor logs it and keeps every partition
    assert live.partitions == before
    store.delete(METAGRAPH_KEY)
    assert registered_hotkeys(store) is None  # no snapshot: everyone counts
