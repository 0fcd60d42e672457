"""``sn46 store``: JSON documents and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sn46_pipelines.cli.store import main
from sn46_pipelines.modelstore.layout import blob_key, record_key

#: The CLI is backend-agnostic (the library tests cover both backends); S3 runs the exit-code contract only.
file_only = pytest.mark.parametrize("store_url", ["file"], indirect=True)


@pytest.fixture
def cli(store_url, capsys):
    """Run ``sn46 store --store URL ARGS --json``; return (exit code, parsed stdout)."""

    def run(*args: str) -> tuple[int, object]:
        code = main(["--store", store_url, *args, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out)

    return run


@file_only
def test_commit_head_inspect_list_checkout(cli, make_checkpoint, tmp_path):
    code, doc = cli(
        "commit",
        str(make_checkpoint(1)),
        "--message",
        "first",
        "--meta",
        "mape=0.08",
        "--meta",
        "data_version=2026-11-01",
    )
    assert code == 0 and set(doc) == {"version_id", "counter", "record_hash", "content_hash", "parent"}
    assert (doc["version_id"], doc["counter"], doc["parent"]) == ("v0000000000", 0, None)
    code, second = cli("commit", str(make_checkpoint(2)), "--retries", "3")
    assert second["parent"] == doc["record_hash"]

    code, head = cli("head")
    assert (code, head["version_id"], head["collected"]) == (0, "v0000000001", False)
    code, first = cli("inspect", "0")
    assert first["metadata"] == {"mape": 0.08, "data_version": "2026-11-01"} and first["message"] == "first"
    assert cli("inspect", "v0000000000")[1] == first
    code, listing = cli("list")
    assert [r["counter"] for r in listing] == [0, 1]
    code, _out = cli("checkout", "head", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "model.pt").exists()


def test_verify_and_find_corruption_exit_codes(cli, make_checkpoint, store_url):
    from sn46_pipelines.objectstore import open_store

    for i in range(3):
        cli("commit", str(make_checkpoint(i)))
    code, doc = cli("verify", "--deep")
    assert code == 0 and {"valid", "versions", "first_bad", "kind", "detail"} <= set(doc)
    assert (doc["valid"], doc["versions"]) == (True, 3)
    code, doc = cli("find-corruption")
    assert (code, doc["corrupted"]) == (0, False)

    objects = open_store(store_url)
    objects.delete(record_key(1))
    code, doc = cli("verify")
    assert (code, doc["valid"], doc["first_bad"], doc["kind"]) == (1, False, "v0000000001", "missing_record")
    code, doc = cli("find-corruption")
    assert code == 1
    assert doc == {
        "corrupted": True,
        "version_id": "v0000000001",
        "counter": 1,
        "kind": "missing_record",
        "detail": doc["detail"],
    }


def test_unreadable_store_exits_2_with_a_json_error(tmp_path, capsys, moto_endpoint):
    for url in (f"file://{tmp_path}/missing", "s3://sn46-missing-bucket/models"):
        for command in (["verify"], ["find-corruption"], ["head"]):
            code = main(["--store", url, *command, "--json"])
            captured = capsys.readouterr()
            assert code == 2
            assert "does not exist" in json.loads(captured.out)["error"]
            assert "does not exist" in captured.err


@file_only
def test_gc_pins_and_collected_checkout(cli, make_checkpoint, tmp_path):
    for i in range(6):
        cli("commit", str(make_checkpoint(i)))
    code, pin = cli("pin", "prod", "1")
    assert (code, pin["mode"], pin["counter"]) == (0, "pinned", 1)
    assert cli("pin", "canary", "--track")[1]["mode"] == "tracking"
    code, pins = cli("pins")
    assert (pins["prod"]["counter"], pins["canary"]["mode"]) == (1, "tracking")

    code, plan = cli("gc", "--keep-versions", "2", "--protect", "3", "--dry-run")
    assert set(plan) >= {"dry_run", "collected", "live", "bytes_freed", "orphans_deleted"}
    assert (code, plan["dry_run"], plan["collected"], plan["live"]) == (0, True, [0, 2], [1, 3, 4, 5])
    code, done = cli("gc", "--keep-versions", "2", "--protect", "3")
    assert (done["dry_run"], done["collected"], done["bytes_freed"]) == (False, [0, 2], plan["bytes_freed"])
    assert cli("inspect", "2")[1]["collected"] is True
    code, err = cli("checkout", "2", str(tmp_path / "x"))
    assert code == 2 and "garbage-collected" in err["error"]
    assert cli("pin", "staging", "0")[0] == 2
    code, refused = cli("gc", "--keep-versions", "1", "--keep-min-versions", "4")
    assert code == 2 and "keep_min_versions" in refused["error"]
    assert cli("verify", "--deep")[1]["valid"] is True


@file_only
def test_replication_and_export_import_through_the_cli(cli, make_checkpoint, tmp_path, capsys):
    for i in range(3):
        cli("commit", str(make_checkpoint(i)))
    replica = f"file://{tmp_path}/replica"
    (tmp_path / "replica").mkdir()
    code, report = cli("replication-check", "--replica", replica)
    assert code == 1 and set(report) >= {
        "in_sync",
        "missing_versions",
        "missing_blobs",
        "lag_versions",
        "lag_seconds",
    }
    assert (report["in_sync"], report["missing_versions"], report["lag_versions"]) == (False, [0, 1, 2], 3)
    code, report = cli("replication-check", "--replica", replica, "--repair")
    assert (code, report["in_sync"]) == (0, True)

    archive = tmp_path / "export.tar.gz"
    assert cli("export", "--versions", "0,2", "--output", str(archive))[0] == 0
    (tmp_path / "restored").mkdir()
    code = main(["--store", f"file://{tmp_path}/restored", "import", str(archive), "--json"])
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    code = main(["--store", f"file://{tmp_path}/restored", "verify", "--deep", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["versions"] == 3


@file_only
def test_bad_arguments_exit_2(cli, make_checkpoint):
    cli("commit", str(make_checkpoint(0)))
    assert cli("inspect", "latest")[0] == 2
    assert cli("inspect", "7")[0] == 2
    assert cli("commit", str(make_checkpoint(1)), "--meta", "novalue")[0] == 2
    assert cli("pin", "prod")[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["gc", "--protect", "x,y"])
    assert exc.value.code == 2


def test_store_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, contextlib, io\n"
        "from sn46_pipelines.cli.store import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "heavy = [m for m in ('torch', 'onnx', 'dagster', 'boto3', 'pyarrow') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@file_only
def test_corrupt_blob_fails_checkout_with_exit_2(cli, make_checkpoint, store_url, tmp_path):
    from sn46_pipelines.objectstore import open_store

    cli("commit", str(make_checkpoint(0)))
    record = cli("inspect", "head")[1]
    objects = open_store(store_url)
    objects.put(blob_key(record["manifest"]["model.pt"]["sha256"]), b"tampered")
    code, err = cli("checkout", "head", str(tmp_path / "out"))
    assert code == 2 and "corrupt" in err["error"]


@file_only
def test_stats_and_audit_trail(cli, make_checkpoint):
    for i in range(3):
        cli("commit", str(make_checkpoint(i)), "-m", f"c{i}")
    cli("pin", "prod", "2")
    cli("gc", "--keep-versions", "1", "--keep-min-versions", "1", "--protect", "")
    code, stats = cli("stats")
    assert code == 0
    assert (stats["versions"], stats["live_versions"], stats["collected_versions"]) == (3, 1, 2)
    assert stats["head"] == "v0000000002" and stats["last_commit_latency_s"] > 0
    assert (
        stats["gc_runs"] == 1
        and stats["gc_versions_deleted_total"] == 2
        and stats["gc_bytes_freed_total"] > 0
    )
    assert stats["storage_bytes"] >= stats["blob_bytes"] + stats["record_bytes"]
    code, trail = cli("audit")
    assert [e["kind"] for e in trail] == ["commit", "commit", "commit", "pin", "gc"]
    assert all(e["who"] and e["when"] for e in trail)
    assert trail[3]["what"]["new"]["counter"] == 2
    code, history = cli("pin-history", "prod")
    assert len(history) == 1
