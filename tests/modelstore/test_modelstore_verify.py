"""Verification and find-corruption: every kind of damage is found, at the right version."""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.modelstore import ModelStore, build_record, segments, verify
from sn46_pipelines.modelstore.layout import HEAD_HINT, blob_key, record_key
from sn46_pipelines.modelstore.record import canonical_json
from sn46_pipelines.objectstore import StoreUnavailableError, open_store


@pytest.fixture
def chain(mstore: ModelStore, make_checkpoint) -> ModelStore:
    """Six versions whose model.pt differs, so each has its own blob."""
    for i in range(6):
        mstore.commit(make_checkpoint(i), message=f"v{i}", metadata={"i": i})
    return mstore


def _edit_record(store: ModelStore, counter: int, **changes) -> None:
    raw = json.loads(store.objects.get(record_key(counter)))
    raw.update(changes)
    store.objects.put(record_key(counter), canonical_json(raw))


def _report(store: ModelStore, deep: bool = True):
    report = verify(store, deep=deep)
    return report.valid, report.first_bad, report.kind


def test_a_clean_chain_verifies(chain: ModelStore):
    report = verify(chain, deep=True)
    assert (report.valid, report.versions, report.live, report.first_bad) == (True, 6, 6, None)
    assert report.bytes_hashed > 0


def test_an_empty_store_is_valid(mstore: ModelStore):
    assert verify(mstore).valid and verify(mstore).versions == 0


def test_edited_record_field_is_a_bad_record_hash(chain: ModelStore):
    _edit_record(chain, 2, message="rewritten history")
    assert _report(chain) == (False, "v0000000002", "bad_record_hash")
    assert _report(chain, deep=False) == (False, "v0000000002", "bad_record_hash")


def test_edited_metadata_with_a_recomputed_hash_breaks_the_next_link(chain: ModelStore):
    forged = build_record(2, chain.get(1), chain.get(2).manifest, message="forged", metadata={"mape": 0.0})
    chain.objects.put(record_key(2), forged.to_bytes())
    assert _report(chain) == (False, "v0000000003", "broken_link")


def test_unparseable_record_is_reported(chain: ModelStore):
    chain.objects.put(record_key(4), b"not json")
    assert _report(chain) == (False, "v0000000004", "bad_record_hash")


def test_deleted_record_is_a_missing_record(chain: ModelStore):
    chain.objects.delete(record_key(3))
    assert _report(chain) == (False, "v0000000003", "missing_record")


def test_deleted_newest_record_is_caught_through_the_head_hint(chain: ModelStore):
    chain.objects.delete(record_key(5))
    assert _report(chain) == (False, "v0000000005", "missing_record")


def test_record_under_the_wrong_key_is_a_non_sequential_counter(chain: ModelStore):
    chain.objects.put(record_key(4), chain.objects.get(record_key(3)))
    assert _report(chain) == (False, "v0000000004", "non_sequential_counter")


def test_deleted_blob_is_a_missing_blob(chain: ModelStore):
    chain.objects.delete(blob_key(chain.get(3).manifest["model.pt"].sha256))
    assert _report(chain, deep=False) == (False, "v0000000003", "missing_blob")


def test_flipped_blob_byte_is_a_hash_mismatch_only_deep_verify_sees(chain: ModelStore):
    key = blob_key(chain.get(4).manifest["model.pt"].sha256)
    data = bytearray(chain.objects.get(key))
    data[10] ^= 0x01
    chain.objects.put(key, bytes(data))
    assert _report(chain, deep=False) == (True, None, None)
    assert _report(chain, deep=True) == (False, "v0000000004", "blob_hash_mismatch")


def test_a_shared_blob_is_blamed_on_the_first_version_using_it(chain: ModelStore):
    key = blob_key(chain.get(5).manifest["feature_config.json"].sha256)  # same file in every version
    chain.objects.put(key, b"x" * chain.get(5).manifest["feature_config.json"].size)
    assert _report(chain) == (False, "v0000000000", "blob_hash_mismatch")


def test_the_first_of_several_problems_is_named(chain: ModelStore):
    chain.objects.delete(record_key(4))
    _edit_record(chain, 1, message="tampered")
    assert _report(chain) == (False, "v0000000001", "bad_record_hash")


def test_hint_naming_another_record_is_detected(chain: ModelStore):
    hint = json.loads(chain.objects.get(HEAD_HINT))
    chain.objects.put(HEAD_HINT, canonical_json({**hint, "record_hash": "0" * 64}))
    assert _report(chain, deep=False) == (False, "v0000000005", "broken_link")


def test_unreadable_store_is_an_error_never_clean(tmp_path, moto_endpoint):
    for url in (f"file://{tmp_path}/missing", "s3://sn46-no-such-bucket/models"):
        with pytest.raises(StoreUnavailableError):
            verify(ModelStore(open_store(url)), deep=True)


@pytest.fixture
def sealed_chain(mstore: ModelStore, make_checkpoint, monkeypatch) -> ModelStore:
    """Ten versions in segments of four, so verification seals v0-v3 and v4-v7."""
    monkeypatch.setattr(segments, "SEGMENT_SIZE", 4)
    for i in range(10):
        mstore.commit(make_checkpoint(i), message=f"v{i}")
    return mstore


def test_commits_and_verify_seal_segments_then_verify_reads_far_fewer_records(sealed_chain: ModelStore):
    objects = sealed_chain.objects
    sealed = ["segments/v0000000000.json", "segments/v0000000004.json"]
    assert sorted(i.key for i in objects.list("segments/")) == sealed  # by the commits of v3 and v7
    objects.delete_many(sealed)
    objects.requests.reset()
    assert verify(sealed_chain).valid
    first = objects.requests.by_operation.get("get", 0)
    assert sorted(i.key for i in objects.list("segments/")) == sealed  # resealed by verify
    objects.requests.reset()
    assert verify(sealed_chain).valid
    assert objects.requests.by_operation.get("get", 0) <= first - 6  # 8 record GETs became 2 segment GETs


def test_a_record_tampered_after_sealing_is_still_found(sealed_chain: ModelStore):
    verify(sealed_chain)
    _edit_record(sealed_chain, 2, message="rewritten after sealing")
    assert _report(sealed_chain, deep=False) == (False, "v0000000002", "bad_record_hash")
    sealed_chain.objects.delete(record_key(5))
    assert _report(sealed_chain, deep=False) == (False, "v0000000002", "bad_record_hash")


def test_a_damaged_segment_costs_speed_never_a_wrong_answer(sealed_chain: ModelStore):
    verify(sealed_chain)
    sealed_chain.objects.put("segments/v0000000000.json", b'{"first": 0, "records": ["x"]}')
    assert verify(sealed_chain).valid
    forged = json.loads(sealed_chain.objects.get("segments/v0000000004.json"))
    forged["records"][1] = forged["records"][1].replace('"v5"', '"forged"')
    sealed_chain.objects.put("segments/v0000000004.json", canonical_json(forged))
    assert _report(sealed_chain, deep=False) == (True, None, None)  # the records are judged, not the cache
    assert (
        "forged" not in sealed_chain.objects.get("segments/v0000000004.json").decode()
    )  # and it is resealed
