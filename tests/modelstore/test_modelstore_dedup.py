"""Deduplication verifies before it trusts: a stored blob of the right size but the wrong bytes is
replaced by the commit (or import) that would have reused it, on a folder, on moto and on SeaweedFS."""

from __future__ import annotations

import pytest

from sn46_pipelines.modelstore import ModelStore, verify
from sn46_pipelines.modelstore.layout import blob_key
from sn46_pipelines.modelstore.transfer import export_versions, import_archive


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


def _rot(store: ModelStore, sha: str) -> None:
    """Flip one byte of a stored blob, keeping its size: what a bad disk or a stray write leaves."""
    data = bytearray(store.objects.get(blob_key(sha)))
    data[-1] ^= 0x01
    store.objects.put(blob_key(sha), bytes(data))


def test_a_commit_replaces_a_corrupt_blob_it_would_have_reused(mstore, make_checkpoint, tmp_path):
    first = mstore.commit(make_checkpoint("same"), message="v0")
    sha = first.manifest["model.pt"].sha256
    _rot(mstore, sha)
    assert not mstore.holds_good_blob(sha, first.manifest["model.pt"].size)

    again = mstore.commit(make_checkpoint("same"), message="v1: the same weights")  # acknowledged only...
    assert again.manifest == first.manifest
    assert mstore.holds_good_blob(sha, again.manifest["model.pt"].size)  # ...with every blob known good
    mstore.checkout(1, tmp_path / "v1")
    assert (tmp_path / "v1" / "model.pt").read_bytes() == (make_checkpoint("same") / "model.pt").read_bytes()
    assert verify(mstore, deep=True).valid  # v0, which shares the blob, is whole again too


def test_an_intact_blob_is_reused_not_uploaded_again(mstore: ModelStore, make_checkpoint):
    first = mstore.commit(make_checkpoint("same"))
    shas = {e.sha256 for e in first.manifest.values()}
    etags = {sha: mstore.objects.head(blob_key(sha)).etag for sha in shas}
    mstore.commit(make_checkpoint("same"))
    assert {sha: mstore.objects.head(blob_key(sha)).etag for sha in etags} == etags  # re-hashed, kept
    assert verify(mstore, deep=True).valid


def test_an_import_replaces_a_corrupt_blob_it_would_have_reused(mstore, make_checkpoint, tmp_path):
    record = mstore.commit(make_checkpoint(1))
    archive = tmp_path / "backup.tar.gz"
    export_versions(mstore, [0], archive)
    (tmp_path / "target").mkdir()
    target = ModelStore.open(f"file://{tmp_path}/target")
    sha = record.manifest["model.pt"].sha256
    target.objects.put(blob_key(sha), b"x" * record.manifest["model.pt"].size)  # same size, wrong bytes
    assert import_archive(target, archive).blobs_written == 3
    assert verify(target, deep=True).valid
