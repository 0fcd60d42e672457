"""Replication compares content: the deep check finds what the quick one cannot, and repair fixes it.

Primary and replica sit on the same backend (two folders, or two prefixes of
one bucket), once on a folder, on moto and on SeaweedFS.
"""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.cli.store import main
from sn46_pipelines.modelstore import ModelStore, ModelStoreError, build_record, verify
from sn46_pipelines.modelstore.layout import blob_key, record_key
from sn46_pipelines.modelstore.record import canonical_json
from sn46_pipelines.modelstore.replication import check_replication


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


@pytest.fixture
def replica_url(store_url: str, tmp_path) -> str:
    """A second, empty store beside the primary: a sibling folder, or another prefix of the bucket."""
    if store_url.startswith("file://"):
        (tmp_path / "replica").mkdir()
        return f"file://{tmp_path}/replica"
    return store_url.rsplit("/", 1)[0] + "/replica"


@pytest.fixture
def synced(mstore: ModelStore, make_checkpoint, replica_url: str) -> tuple[ModelStore, ModelStore]:
    """Five versions on the primary, all replicated."""
    for i in range(5):
        mstore.commit(make_checkpoint(i), message=f"v{i}")
    replica = ModelStore.open(replica_url)
    assert check_replication(mstore, replica, repair=True).in_sync
    return mstore, replica


def _flip_byte(store: ModelStore, key: str) -> None:
    data = bytearray(store.objects.get(key))
    data[len(data) // 2] ^= 0x01
    store.objects.put(key, bytes(data))


def test_a_flipped_byte_in_a_replica_blob_is_found_deep_and_repaired(synced):
    primary, replica = synced
    sha = primary.get(3).manifest["model.pt"].sha256
    _flip_byte(replica, blob_key(sha))

    assert check_replication(primary, replica).in_sync  # sizes match: the quick check cannot see it
    report = check_replication(primary, replica, deep=True)
    assert (report.in_sync, report.corrupt_blobs, report.missing_blobs) == (False, [sha], [])
    assert report.bytes_hashed >= primary.get(3).size
    assert not verify(replica, deep=True).valid

    repaired = check_replication(primary, replica, repair=True, deep=True)
    assert repaired.in_sync and repaired.repaired["blobs"] == 1
    assert replica.objects.get(blob_key(sha)) == primary.objects.get(blob_key(sha))
    assert verify(replica, deep=True).valid


def test_an_edited_replica_record_that_kept_its_record_hash_is_found_deep_and_repaired(synced):
    primary, replica = synced
    raw = json.loads(replica.objects.get(record_key(2)))
    raw["metadata"] = {"mape": 0.0001}  # record_hash left as it was, so v3's parent still "matches"
    replica.objects.put(record_key(2), canonical_json(raw))

    assert check_replication(primary, replica).in_sync
    report = check_replication(primary, replica, deep=True)
    assert (report.in_sync, report.corrupt_records, report.diverged_at) == (False, [2], None)
    assert verify(replica, deep=True).kind == "bad_record_hash"

    repaired = check_replication(primary, replica, repair=True, deep=True)
    assert repaired.in_sync and repaired.repaired["corrupt_records_replaced"] == 1
    assert replica.objects.get(record_key(2)) == primary.objects.get(record_key(2))
    assert verify(replica, deep=True).valid


def test_a_valid_record_with_other_history_is_divergence_and_never_overwritten(synced):
    primary, replica = synced
    forged = build_record(4, replica.get(3), replica.get(4).manifest, message="written on the replica")
    replica.objects.put(record_key(4), forged.to_bytes())

    report = check_replication(primary, replica, deep=True)
    assert (report.in_sync, report.diverged_at, report.corrupt_records) == (False, 4, [])
    with pytest.raises(ModelStoreError, match="diverges"):
        check_replication(primary, replica, repair=True, deep=True)
    assert replica.objects.get(record_key(4)) == forged.to_bytes()


def test_a_corrupt_primary_is_never_copied(synced, make_checkpoint):
    primary, replica = synced
    primary.commit(make_checkpoint("new"), message="v5")
    _flip_byte(primary, blob_key(primary.get(5).manifest["model.pt"].sha256))
    with pytest.raises(ModelStoreError, match="corrupt"):
        check_replication(primary, replica, repair=True)  # the quick check: the copy itself is hashed
    assert not replica.objects.exists(blob_key(primary.get(5).manifest["model.pt"].sha256))
    raw = json.loads(primary.objects.get(record_key(1)))
    primary.objects.put(record_key(1), canonical_json({**raw, "message": "rewritten"}))
    with pytest.raises(ModelStoreError, match="does not verify at v0000000001"):
        check_replication(primary, replica, deep=True)


def test_lag_is_reported_as_before_in_deep_mode(synced, make_checkpoint):
    primary, replica = synced
    primary.commit(make_checkpoint("late"), message="v5")
    report = check_replication(primary, replica, deep=True)
    assert (report.missing_versions, report.lag_versions, report.corrupt_records) == ([5], 1, [])
    assert report.lag_seconds > 0 and len(report.missing_blobs) == 2


def test_the_cli_deep_check_exits_1_then_repair_exits_0(synced, store_url, replica_url, capsys):
    primary, replica = synced
    _flip_byte(replica, blob_key(primary.get(0).manifest["model.pt"].sha256))
    args = ["--store", store_url, "replication-check", "--replica", replica_url, "--json"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--deep"]) == 1
    assert len(json.loads(capsys.readouterr().out)["corrupt_blobs"]) == 1
    assert main([*args, "--deep", "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["repaired"]["blobs"] == 1
