"""GC: retention policy, pins and protected versions, orphans, repeat runs, and pins themselves."""

from __future__ import annotations

import hashlib
import time

import pytest

from sn46_pipelines.modelstore import (
    GCRefusedError,
    InvalidRecordError,
    ModelStore,
    StoreBusyError,
    VersionCollectedError,
    VersionNotFoundError,
    collect_garbage,
    pin_history,
    read_pins,
    set_pin,
    verify,
)
from sn46_pipelines.modelstore.audit import events
from sn46_pipelines.modelstore.layout import blob_key
from sn46_pipelines.modelstore.lease import Lease


@pytest.fixture
def chain(mstore: ModelStore, make_checkpoint) -> ModelStore:
    for i in range(8):
        mstore.commit(make_checkpoint(i), message=f"v{i}")
    return mstore


def _blob_count(store: ModelStore) -> int:
    return len(list(store.objects.list("blobs/")))


def test_gc_keeps_newest_protected_and_pinned_and_deletes_only_unshared_blobs(chain: ModelStore, tmp_path):
    set_pin(chain, "prod", 1)
    set_pin(chain, "staging", track=True)
    before = _blob_count(chain)
    result = collect_garbage(chain, keep_versions=3, protect=[3])
    assert result.collected == [0, 2, 4]
    assert result.live == [1, 3, 5, 6, 7]
    # each collected version had two unique blobs (model.pt, metrics.json); feature_config.json is shared
    assert result.blobs_deleted == 6 and _blob_count(chain) == before - 6
    assert result.bytes_freed == sum(
        chain.get(c).size - chain.get(c).manifest["feature_config.json"].size for c in (0, 2, 4)
    )
    assert chain.is_collected(0) and not chain.is_collected(1)
    chain.checkout("pin:prod", tmp_path / "prod")  # pinned version still whole
    with pytest.raises(VersionCollectedError, match="garbage-collected"):
        chain.checkout(2, tmp_path / "gone")
    assert verify(chain, deep=True).valid


def test_gc_twice_in_a_row_then_verify_is_clean(chain: ModelStore, make_checkpoint):
    first = collect_garbage(chain, keep_versions=2)
    second = collect_garbage(chain, keep_versions=2)
    assert first.collected == [0, 1, 2, 3, 4, 5] and second.collected == []
    assert second.bytes_freed == 0
    chain.commit(make_checkpoint(99))
    third = collect_garbage(chain, keep_versions=2)
    assert third.collected == [6]
    report = verify(chain, deep=True)
    assert (report.valid, report.versions, report.collected, report.live) == (True, 9, 7, 2)
    assert [e.what["collected"] for e in events(chain.objects, "gc")] == [[0, 1, 2, 3, 4, 5], [], [6]]


def test_dry_run_shows_the_same_plan_and_deletes_nothing(chain: ModelStore):
    before = sorted(i.key for i in chain.objects.list())
    plan = collect_garbage(chain, keep_versions=3, dry_run=True)
    assert sorted(i.key for i in chain.objects.list()) == before
    done = collect_garbage(chain, keep_versions=3)
    assert (plan.dry_run, done.dry_run) == (True, False)
    assert (plan.collected, plan.live, plan.bytes_freed) == (done.collected, done.live, done.bytes_freed)


def test_keep_min_versions_refuses_and_deletes_nothing(chain: ModelStore):
    before = sorted(i.key for i in chain.objects.list())
    with pytest.raises(GCRefusedError, match="keep_min_versions=5"):
        collect_garbage(chain, keep_versions=2, keep_min_versions=5)
    assert sorted(i.key for i in chain.objects.list()) == before


def test_head_is_always_live(chain: ModelStore):
    result = collect_garbage(chain, keep_versions=1)
    assert result.live == [7]
    assert verify(chain, deep=True).valid


def test_orphans_are_deleted_only_after_the_grace_period(chain: ModelStore, tmp_path):
    orphan = tmp_path / "orphan.bin"
    orphan.write_bytes(b"left by a crashed commit")
    key = blob_key(hashlib.sha256(orphan.read_bytes()).hexdigest())
    chain.objects.upload(key, orphan)
    assert collect_garbage(chain, keep_versions=10).orphans_deleted == 0
    assert chain.objects.exists(key)
    time.sleep(0.05)
    result = collect_garbage(chain, keep_versions=10, orphan_grace=0.01)
    assert (result.orphans_deleted, result.collected) == (1, [])
    assert not chain.objects.exists(key)
    assert verify(chain, deep=True).valid


def test_a_second_gc_waits_its_turn(chain: ModelStore):
    with Lease(chain.objects), pytest.raises(StoreBusyError, match="another GC"):
        collect_garbage(chain, keep_versions=2)
    assert collect_garbage(chain, keep_versions=2).collected


def test_bad_policy_is_refused(chain: ModelStore):
    with pytest.raises(InvalidRecordError):
        collect_garbage(chain, keep_versions=0)


def test_pins_move_by_cas_and_keep_history(chain: ModelStore):
    set_pin(chain, "prod", "v0000000003")
    set_pin(chain, "prod", 5)
    set_pin(chain, "canary", track=True)
    pins = read_pins(chain)
    assert (pins["prod"].mode, pins["prod"].counter, pins["prod"].revision) == ("pinned", 5, 2)
    assert (pins["canary"].mode, pins["canary"].counter) == ("tracking", None)
    assert chain.resolve("pin:prod") == 5 and chain.resolve("pin:canary") == 7
    history = pin_history(chain, "prod")
    assert [(e.what["old"] or {}).get("counter") for e in history] == [None, 3]
    assert [e.what["new"]["counter"] for e in history] == [3, 5]
    assert all(e.who for e in history)


def test_pinning_a_collected_or_missing_version_is_an_error(chain: ModelStore):
    collect_garbage(chain, keep_versions=2)
    with pytest.raises(VersionCollectedError):
        set_pin(chain, "prod", 0)
    with pytest.raises(VersionNotFoundError):
        set_pin(chain, "prod", 42)
    with pytest.raises(InvalidRecordError, match="invalid pin name"):
        set_pin(chain, "Prod Env", 7)
    assert read_pins(chain) == {}


def test_concurrent_pin_updates_lose_nothing(chain: ModelStore):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: set_pin(ModelStore(chain.objects), "prod", c % 8), range(12)))
    assert read_pins(chain)["prod"].revision == 12
    assert len(pin_history(chain, "prod")) == 12
