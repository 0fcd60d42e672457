"""Rollback is detected: a chain cut short, or rewritten, is checked against the audit trail's witness."""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.cli.store import main
from sn46_pipelines.modelstore import ModelStore, build_record, verify
from sn46_pipelines.modelstore.layout import HEAD_HINT, record_key
from sn46_pipelines.modelstore.record import canonical_json


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


@pytest.fixture
def chain(mstore: ModelStore, make_checkpoint) -> ModelStore:
    for i in range(20):
        mstore.commit(make_checkpoint(i % 3), message=f"v{i}")
    return mstore


def _point_head_at(store: ModelStore, counter: int) -> None:
    record = store.get(counter)
    store.objects.put(
        HEAD_HINT,
        canonical_json(
            {"counter": counter, "version_id": record.version_id, "record_hash": record.record_hash}
        ),
    )


def test_cutting_off_the_newest_versions_is_a_rollback(chain: ModelStore, store_url: str, capsys):
    chain.objects.delete_many(record_key(c) for c in range(15, 20))
    _point_head_at(chain, 14)
    assert chain.head_counter() == 14  # to a reader the chain simply ends at v14
    for deep in (False, True):
        report = verify(chain, deep=deep)
        assert (report.valid, report.first_bad, report.kind) == (False, "v0000000015", "rolled_back")
        assert "v0000000019" in report.detail and "v0000000014" in report.detail
    assert main(["--store", store_url, "verify", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["kind"] == "rolled_back"


def test_a_rewritten_tail_with_valid_hashes_is_a_rollback(chain: ModelStore):
    parent = chain.get(16)
    for counter in range(17, 20):  # a forged but self-consistent history on top of v16
        parent = build_record(counter, parent, parent.manifest, message="forged")
        chain.objects.put(record_key(counter), parent.to_bytes())
    _point_head_at(chain, 19)
    report = verify(chain)
    assert (report.valid, report.first_bad, report.kind) == (False, "v0000000019", "rolled_back")
    assert "replaced" in report.detail


def test_new_commits_imports_and_gc_keep_the_witness_in_step(chain: ModelStore, make_checkpoint, tmp_path):
    from sn46_pipelines.modelstore import collect_garbage
    from sn46_pipelines.modelstore.transfer import export_versions, import_archive

    chain.commit(make_checkpoint("late"))
    collect_garbage(chain, keep_versions=3)
    assert verify(chain).valid
    export_versions(chain, [20], tmp_path / "a.tar.gz")
    (tmp_path / "target").mkdir()
    target = ModelStore.open(f"file://{tmp_path}/target")
    import_archive(target, tmp_path / "a.tar.gz")  # no commit events there: the import is the witness
    assert verify(target, deep=True).valid
    target.objects.delete(record_key(20))
    _point_head_at(target, 19)
    assert verify(target).kind == "rolled_back"
