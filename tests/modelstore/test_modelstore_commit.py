"""Commit, head lookup, reads and checkout, on both backends."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from sn46_pipelines.modelstore import (
    ConflictError,
    IntegrityError,
    InvalidRecordError,
    ModelStore,
    VersionNotFoundError,
    build_record,
    parse_record,
    verify,
)
from sn46_pipelines.modelstore.layout import HEAD_HINT, blob_key, record_key
from sn46_pipelines.modelstore.record import canonical_json
from sn46_pipelines.objectstore import StoreUnavailableError, open_store


def test_commit_builds_a_hash_chain_and_reads_back(mstore: ModelStore, make_checkpoint):
    assert mstore.head() is None
    first = mstore.commit(make_checkpoint(1), message="first", metadata={"mape": 0.08, "data": "2026-11-01"})
    second = mstore.commit(make_checkpoint(2), message="second")

    assert (first.counter, first.version_id, first.parent) == (0, "v0000000000", None)
    assert second.parent == first.record_hash
    assert sorted(second.manifest) == ["feature_config.json", "metrics.json", "model.pt"]
    assert mstore.head() == second
    assert mstore.get("v0000000000") == first == mstore.get(0) == mstore.get("0")
    assert [r.counter for r in mstore.list_versions()] == [0, 1]
    stored = json.loads(mstore.objects.get(record_key(0)))
    assert {
        "counter",
        "version_id",
        "parent",
        "manifest",
        "content_hash",
        "message",
        "metadata",
        "timestamp",
        "record_hash",
    } <= set(stored)
    assert stored["metadata"] == {"mape": 0.08, "data": "2026-11-01"}


def test_identical_files_are_stored_once(mstore: ModelStore, make_checkpoint):
    mstore.commit(make_checkpoint(1))
    mstore.commit(make_checkpoint(1))
    r = mstore.commit(make_checkpoint(2))
    blobs = list(mstore.objects.list("blobs/"))
    # three distinct files in v0 (= v1), and v2 differs only in model.pt and metrics.json
    assert len(blobs) == 5
    assert {b.key for b in blobs} >= {blob_key(e.sha256) for e in r.manifest.values()}


def test_checkout_writes_verified_files(mstore: ModelStore, make_checkpoint, tmp_path):
    folder = make_checkpoint(7, extra={"sub/dir/extra.bin": b"\x00\x01" * 1000})
    mstore.commit(folder)
    out = tmp_path / "out"
    mstore.checkout("head", out)
    for name in ("model.pt", "metrics.json", "feature_config.json", "sub/dir/extra.bin"):
        assert (out / name).read_bytes() == (folder / name).read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".sn46")]


def test_checkout_of_a_corrupt_blob_writes_nothing(mstore: ModelStore, make_checkpoint, tmp_path):
    record = mstore.commit(make_checkpoint(1))
    key = blob_key(record.manifest["model.pt"].sha256)
    data = bytearray(mstore.objects.get(key))
    data[3] ^= 0xFF
    mstore.objects.put(key, bytes(data))
    with pytest.raises(IntegrityError, match="corrupt"):
        mstore.checkout(0, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_single_file_commit_is_named_by_its_basename(mstore: ModelStore, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx bytes")
    assert list(mstore.commit(path).manifest) == ["model.onnx"]


def test_bad_commit_input_is_refused_clearly(mstore: ModelStore, tmp_path):
    with pytest.raises(InvalidRecordError, match="no such file"):
        mstore.commit(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRecordError, match="no files"):
        mstore.commit(tmp_path / "empty")
    with pytest.raises(InvalidRecordError):
        mstore.commit(tmp_path, metadata={"x": float("nan")})
    assert mstore.head() is None


def test_losing_writer_gets_a_conflict_naming_the_winner(mstore: ModelStore, make_checkpoint):
    base = mstore.commit(make_checkpoint(0), message="base")
    # Another writer builds v1 on the same parent and gets there first.
    winner = build_record(1, base, base.manifest, message="the winner")
    mstore.objects.put_if_absent(record_key(1), winner.to_bytes())
    stale = ModelStore(mstore.objects)
    stale.head = lambda: base  # this writer still believes v0 is the head
    with pytest.raises(ConflictError, match="the winner") as info:
        stale.commit(make_checkpoint(1), message="loser")
    assert info.value.winner["record_hash"] == winner.record_hash
    assert mstore.head() == winner


def test_retries_commit_on_top_of_the_new_head(mstore: ModelStore, make_checkpoint):
    base = mstore.commit(make_checkpoint(0))
    winner = build_record(1, base, base.manifest, message="the winner")
    mstore.objects.put_if_absent(record_key(1), winner.to_bytes())
    real_head = mstore.head
    calls = iter([base])
    mstore.head = lambda: next(calls, None) or real_head()  # stale once, then fresh
    record = mstore.commit(make_checkpoint(1), message="mine", retries=1)
    assert (record.counter, record.parent) == (2, winner.record_hash)


def test_head_lookup_costs_a_few_requests_with_a_fresh_lagging_or_missing_hint(
    mstore: ModelStore, make_checkpoint
):
    records = [parent := build_record(0, None, {}, message="0")]
    for counter in range(1, 1050):  # past 1,000: no listing page limit anywhere in the lookup or verify
        records.append(parent := build_record(counter, parent, {}, message=str(counter)))
    objects = mstore.objects
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: objects.put_if_absent(record_key(r.counter), r.to_bytes()), records))

    objects.requests.reset()
    assert mstore.head_counter() == 1049  # no hint: gallop + bisect
    assert objects.requests.total <= 2 * 11 + 2

    hint = {"counter": 1049, "version_id": "v0000001049", "record_hash": parent.record_hash}
    objects.put(HEAD_HINT, canonical_json(hint))
    objects.requests.reset()
    assert mstore.head().counter == 1049
    assert objects.requests.total <= 5

    objects.put(HEAD_HINT, canonical_json({**hint, "counter": 1040}))  # lagging hint
    objects.requests.reset()
    assert mstore.head_counter() == 1049
    assert objects.requests.total <= 12
    objects.requests.reset()
    assert mstore.get(700).message == "700"
    assert objects.requests.total == 1
    objects.put(HEAD_HINT, canonical_json(hint))
    report = verify(mstore)  # listings past one 1,000-key page
    assert (report.valid, report.versions) == (True, 1050)


def test_missing_store_is_an_error_not_an_empty_chain(tmp_path, moto_endpoint):
    for url in (f"file://{tmp_path}/nope", "s3://no-such-bucket-sn46/models"):
        store = ModelStore(open_store(url))
        with pytest.raises(StoreUnavailableError):
            store.head()
    (tmp_path / "model.pt").write_bytes(b"w")
    with pytest.raises(StoreUnavailableError):
        ModelStore(open_store("s3://no-such-bucket-sn46/models")).commit(tmp_path / "model.pt")


def test_unknown_version_and_pin_are_clear_errors(mstore: ModelStore, make_checkpoint):
    with pytest.raises(VersionNotFoundError, match="no versions"):
        mstore.get("head")
    mstore.commit(make_checkpoint(0))
    with pytest.raises(VersionNotFoundError, match="v0000000005 does not exist"):
        mstore.get(5)
    with pytest.raises(VersionNotFoundError, match="no pin named 'prod'"):
        mstore.get("pin:prod")
    with pytest.raises(InvalidRecordError, match="invalid version"):
        mstore.get("latest")


def test_record_round_trip_and_canonical_hash():
    record = build_record(0, None, {}, message="é", metadata={"b": 1, "a": [1.5, None]})
    again = parse_record(record.to_bytes())
    assert again == record
    assert again.computed_record_hash() == record.record_hash
    assert record.to_bytes() == canonical_json(json.loads(record.to_bytes()))
    with pytest.raises(InvalidRecordError, match="lacks"):
        parse_record(b'{"counter": 0}')
    with pytest.raises(InvalidRecordError, match="not JSON"):
        parse_record(b"{oops")
    with pytest.raises(InvalidRecordError, match="invalid checkpoint file path"):
        build_record(0, None, {"../escape": record.manifest.get("x")})  # type: ignore[dict-item]


def test_a_file_changed_while_committing_is_refused_and_leaves_nothing(mstore: ModelStore, make_checkpoint):
    folder = make_checkpoint(1)
    objects = mstore.objects
    begin = objects.begin_upload

    def rewrite_meanwhile(path):  # the trainer rewrites model.pt while the commit hashes it
        pending = begin(path)
        if path.name == "model.pt":
            path.write_bytes(b"other weights, another size")
        return pending

    objects.begin_upload = rewrite_meanwhile
    with pytest.raises(InvalidRecordError, match=r"model\.pt changed while it was being committed"):
        mstore.commit(folder)
    del objects.begin_upload
    assert mstore.head() is None
    assert list(objects.list("blobs/")) == [] and list(objects.list("inflight/")) == []
    assert mstore.commit(folder).counter == 0
