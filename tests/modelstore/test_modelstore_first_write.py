"""Every command that writes creates a folder store that does not exist yet; none creates a bucket."""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.cli.store import main
from sn46_pipelines.modelstore import ModelStore, verify
from sn46_pipelines.objectstore import StoreUnavailableError


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


@pytest.fixture
def three_versions(store_url: str, make_checkpoint, capsys) -> str:
    for i in range(3):
        assert main(["--store", store_url, "commit", str(make_checkpoint(i))]) == 0
    capsys.readouterr()
    return store_url


def test_import_creates_a_folder_store_on_first_write(three_versions: str, tmp_path, capsys):
    archive = tmp_path / "backup.tar.gz"
    assert main(["--store", three_versions, "export", "--versions", "0,2", "--output", str(archive)]) == 0
    capsys.readouterr()
    target = f"file://{tmp_path}/disaster/restore"  # neither folder exists yet
    assert main(["--store", target, "import", str(archive), "--json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["records_written"] == [0, 1, 2]
    assert verify(ModelStore.open(target), deep=True).valid


def test_replication_repair_creates_a_folder_replica_on_first_write(three_versions: str, tmp_path, capsys):
    replica = f"file://{tmp_path}/dr/replica"
    args = ["--store", three_versions, "replication-check", "--replica", replica, "--json"]
    assert main(args) == 2  # checking only reads: a missing replica is an error, not an empty store
    assert "does not exist" in json.loads(capsys.readouterr().out)["error"]
    assert not (tmp_path / "dr").exists()
    assert main([*args, "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["in_sync"] is True
    assert verify(ModelStore.open(replica), deep=True).valid


def test_commit_creates_the_folder_but_bad_input_creates_nothing(tmp_path, make_checkpoint):
    store = ModelStore.open(f"file://{tmp_path}/new/store")
    with pytest.raises(ValueError, match="no such file"):
        store.commit(tmp_path / "missing")
    assert not (tmp_path / "new").exists()
    assert store.commit(make_checkpoint(0)).counter == 0


def test_a_missing_bucket_is_never_created(moto_endpoint, tmp_path, make_checkpoint):
    store = ModelStore.open("s3://sn46-no-such-bucket/models")
    with pytest.raises(StoreUnavailableError, match="bucket does not exist"):
        store.commit(make_checkpoint(0))
