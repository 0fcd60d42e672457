"""Export/import round trips and the replication check, across both backends."""

from __future__ import annotations

import gzip
import io
import tarfile
import time

import pytest

from sn46_pipelines.modelstore import (
    ImportRejectedError,
    ModelStore,
    ModelStoreError,
    VersionCollectedError,
    collect_garbage,
    verify,
)
from sn46_pipelines.modelstore.layout import blob_key, record_key
from sn46_pipelines.modelstore.replication import check_replication
from sn46_pipelines.modelstore.transfer import export_versions, import_archive


@pytest.fixture
def chain(mstore: ModelStore, make_checkpoint) -> ModelStore:
    for i in range(6):
        mstore.commit(make_checkpoint(i), message=f"v{i}")
    return mstore


@pytest.fixture
def empty_file_store(tmp_path) -> ModelStore:
    (tmp_path / "target").mkdir()
    return ModelStore.open(f"file://{tmp_path}/target")


def test_export_import_round_trip(chain: ModelStore, empty_file_store: ModelStore, tmp_path):
    archive = tmp_path / "backup.tar.gz"
    result = export_versions(chain, [3, "v0000000005"], archive)
    assert (result.versions, result.records) == ([3, 5], 6)
    imported = import_archive(empty_file_store, archive)
    assert imported.records_written == [0, 1, 2, 3, 4, 5]
    report = verify(empty_file_store, deep=True)
    assert (report.valid, report.versions, report.live, report.collected) == (True, 6, 2, 4)
    assert [r.record_hash for r in empty_file_store.list_versions()] == [
        r.record_hash for r in chain.list_versions()
    ]
    empty_file_store.checkout(3, tmp_path / "v3")
    assert (tmp_path / "v3" / "model.pt").read_bytes() == b"weights-3" * 50
    # Importing again is a no-op; importing into the source itself too.
    assert import_archive(empty_file_store, archive).records_written == []
    assert import_archive(chain, archive).records_written == []


def test_import_extends_a_store_that_holds_a_prefix(chain: ModelStore, tmp_path, make_checkpoint):
    early = tmp_path / "early.tar.gz"
    export_versions(chain, [1], early)
    late = tmp_path / "late.tar.gz"
    export_versions(chain, [5], late)
    (tmp_path / "t").mkdir()
    target = ModelStore.open(f"file://{tmp_path}/t")
    import_archive(target, early)
    assert import_archive(target, late).records_written == [2, 3, 4, 5]
    assert verify(target, deep=True).valid


def test_import_refuses_a_diverging_chain(
    chain: ModelStore, empty_file_store: ModelStore, tmp_path, make_checkpoint
):
    archive = tmp_path / "a.tar.gz"
    export_versions(chain, [5], archive)
    empty_file_store.commit(make_checkpoint("other"))
    with pytest.raises(ImportRejectedError, match="diverge"):
        import_archive(empty_file_store, archive)
    assert empty_file_store.record_counters() == [0]


def _rewrite(archive, out, change):
    """Copy a tar.gz, letting ``change(name, data)`` return new bytes for any member."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def test_import_verifies_every_hash_before_anything_is_visible(chain, empty_file_store, tmp_path):
    archive = tmp_path / "a.tar.gz"
    export_versions(chain, [2], archive)
    sha = chain.get(2).manifest["model.pt"].sha256

    def flip_blob(name, data):
        return data[:-1] + bytes([data[-1] ^ 1]) if name == blob_key(sha) else data

    def edit_record(name, data):
        return data.replace(b'"v1"', b'"v1!"') if name == record_key(1) else data

    for i, change in enumerate((flip_blob, edit_record)):
        bad = tmp_path / f"bad{i}.tar.gz"
        _rewrite(archive, bad, change)
        with pytest.raises(ImportRejectedError):
            import_archive(empty_file_store, bad)
        assert list(empty_file_store.objects.list()) == []
    (tmp_path / "junk.tar.gz").write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(ImportRejectedError):
        import_archive(empty_file_store, tmp_path / "junk.tar.gz")


def test_exporting_a_collected_version_is_refused(chain: ModelStore, tmp_path):
    collect_garbage(chain, keep_versions=2)
    with pytest.raises(VersionCollectedError):
        export_versions(chain, [0], tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_replication_reports_lag_and_repairs(chain: ModelStore, tmp_path, make_checkpoint):
    (tmp_path / "replica").mkdir()
    replica = ModelStore.open(f"file://{tmp_path}/replica")
    report = check_replication(chain, replica)
    assert (report.in_sync, report.missing_versions, report.lag_versions) == (False, [0, 1, 2, 3, 4, 5], 6)
    assert report.lag_seconds > 0 and len(report.missing_blobs) == 13
    repaired = check_replication(chain, replica, repair=True)
    assert repaired.in_sync and repaired.repaired["records"] == 6
    assert verify(replica, deep=True).valid

    time.sleep(0.01)
    chain.commit(make_checkpoint("new"))
    collect_garbage(chain, keep_versions=3)
    behind = check_replication(chain, replica)
    assert (behind.missing_versions, behind.lag_versions, behind.missing_markers) == ([6], 1, [0, 1, 2, 3])
    assert 0 < behind.lag_seconds < 60
    assert check_replication(chain, replica, repair=True).in_sync
    assert verify(replica, deep=True).valid


def test_replication_detects_a_diverged_replica_and_refuses_to_repair(chain, tmp_path, make_checkpoint):
    (tmp_path / "replica").mkdir()
    replica = ModelStore.open(f"file://{tmp_path}/replica")
    for i in range(3):
        replica.commit(make_checkpoint(i), message=f"v{i}" if i < 2 else "elsewhere")
    report = check_replication(chain, replica)
    # v0 and v1 carry different timestamps, so history differs from the very first record
    assert report.diverged_at == 0 and not report.in_sync
    with pytest.raises(ModelStoreError, match="diverges"):
        check_replication(chain, replica, repair=True)
