"""The validator views: one DuckDB file that opens on its own, and ``sn46 query`` over the store itself."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from sn46_pipelines.cli import build_parser
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.schema import COLUMNS
from sn46_pipelines.listings.views import VIEW_NAMES, training_listings, write_views_file
from tests.listings.aggregates.aggregates_fixtures import (
    NOW,
    UPLOADED,
    commit,
    listing,
    rejection,
    rows_of,
    upload,
)

SCORES_SQL = "select hotkey, score, passed, reasons from miner_scores order by score desc"


def publish(store):
    """alice: 300 clean listings (passes). bob: 20 own, 10 copies of alice's, one bad file (fails)."""
    alice, bob = upload("alice"), upload("bob", uploaded_at=UPLOADED + timedelta(hours=1))
    alice_rows = [listing(f"a{i}", price=300_000.0 + i) for i in range(300)]
    commit(store, "alice", rows_of(alice, *alice_rows))
    broken = upload("bob", name="broken")
    commit(
        store,
        "bob",
        rows_of(bob, *[listing(f"b{i}") for i in range(20)], *alice_rows[:10]),
        [rejection(broken, "schema_mismatch", None)],
    )
    write_aggregates(store, aggregate_store(store, now=NOW))
    return store


@pytest.fixture
def published(store):
    """The published store on both backends (folder and S3)."""
    return publish(store)


@pytest.fixture
def published_folder(folder_store):
    """The published store on a folder only: for what does not depend on the backend."""
    return publish(folder_store)


def run_query(capsys, store, sql: str, form: str = "json") -> tuple[int, str, str]:
    args = build_parser().parse_args(["query", sql, "--format", form, "--store", store.url])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_views_file_opens_alone_in_a_fresh_process(published, tmp_path):
    path = tmp_path / "sn46.duckdb"
    rows = write_views_file(published, path)
    assert rows == {
        "listings": 320,
        "quarantine": 11,
        "miner_epoch_stats": 0,
        "miner_scores": 2,
        "miner_job_stats": 2,
        "zipcode_stats": 1,
        "cross_miner_duplicates": 10,
    }
    assert not (tmp_path / "sn46.duckdb.wal").exists()

    reader = f"""
import duckdb, json
con = duckdb.connect({str(path)!r}, read_only=True)
tables = [r[0] for r in con.sql("select table_name from information_schema.tables order by all").fetchall()]
columns = {{t: [r[0] for r in con.sql(f"describe {{t}}").fetchall()] for t in tables}}
scores = con.sql({SCORES_SQL!r}).fetchall()
reasons = con.sql("select reason, count(*), count(row_index) from quarantine group by all order by all")
reasons = reasons.fetchall()
print(json.dumps({{"tables": tables, "columns": columns, "scores": scores, "reasons": reasons}}))
"""
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", reader], capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout
    )
    assert result["tables"] == sorted(VIEW_NAMES)
    assert result["columns"]["listings"][: len(COLUMNS) + 2] == [*COLUMNS, "hotkey", "job_id"]
    assert result["columns"]["miner_scores"][:4] == ["hotkey", "score", "passed", "reasons"]
    for column in ("rows_accepted", "rows_rejected", "duplicate_rate", "copy_rate"):
        assert column in result["columns"]["miner_scores"]
    quarantine_columns = ["hotkey", "job_id", "file_key", "row_index", "reason", "detail"]
    assert result["columns"]["quarantine"] == quarantine_columns
    assert [(h, p) for h, _, p, _ in result["scores"]] == [("alice", True), ("bob", False)]
    assert result["scores"][0][1] == pytest.approx(0.3)
    assert result["scores"][1][3] == ["too_few_rows", "low_score", "copies"]
    # copies are rows (row_index set); the whole-file rejection has no row_index
    assert result["reasons"] == [["cross_miner_copy", 10, 10], ["schema_mismatch", 1, 0]]


def test_query_over_the_store_agrees_with_the_file(published, tmp_path, capsys):
    import duckdb

    path = tmp_path / "sn46.duckdb"
    write_views_file(published, path)
    sql = (
        f"select {', '.join(f'(select count(*) from {name}) as {name}' for name in VIEW_NAMES)}, "
        f"(select list(hotkey || ':' || score order by hotkey) from miner_scores) as scores"
    )
    code, out, err = run_query(capsys, published, sql)
    assert (code, err) == (0, "")
    with duckdb.connect(str(path), read_only=True) as con:
        [expected] = con.sql(sql).fetchall()
    [answer] = json.loads(out)
    assert list(answer.values()) == list(expected)
    assert answer["listings"] == 320 and answer["cross_miner_duplicates"] == 10


@pytest.mark.parametrize("form", ["table", "csv", "json"])
def test_query_formats(published_folder, capsys, form):
    code, out, _ = run_query(capsys, published_folder, SCORES_SQL, form)
    assert code == 0
    if form == "json":
        assert [(r["hotkey"], r["passed"]) for r in json.loads(out)] == [("alice", True), ("bob", False)]
    elif form == "csv":
        lines = out.splitlines()
        assert lines[0] == "hotkey,score,passed,reasons"
        assert lines[1].startswith("alice,0.3") and lines[1].endswith(",true,[]")
        assert lines[2].endswith('false,"[""too_few_rows"", ""low_score"", ""copies""]"')
    else:
        assert "alice" in out and "too_few_rows" in out and "varchar[]" in out


def test_a_bad_query_or_a_store_without_aggregates_is_a_one_line_error(published_folder, capsys):
    code, out, err = run_query(capsys, published_folder, "select nope from miner_scores")
    assert (code, out) == (2, "")
    assert err.startswith("sn46: error: query failed:") and "nope" in err

    published_folder.delete("aggregates/miner_scores.parquet")
    code, out, err = run_query(capsys, published_folder, SCORES_SQL)
    assert (code, out) == (2, "")
    assert "aggregates/miner_scores.parquet" in err and "listing_aggregates" in err


def test_training_listings_are_the_passing_miners_accepted_rows_once(published):
    table = training_listings(published)
    assert table.num_rows == 300
    assert set(table.column("hotkey").to_pylist()) == {"alice"}
    assert len(set(table.column("zpid").to_pylist())) == 300
    assert table.schema.names[: len(COLUMNS)] == list(COLUMNS)


def test_curated_data_newer_than_the_aggregates_is_flagged_and_not_trained_on(published_folder, capsys):
    from sn46_pipelines.listings.views import StaleAggregatesError

    alice = upload("alice")
    # a new ingest commit after the aggregates
    commit(published_folder, "alice", rows_of(alice, *[listing(f"a{i}") for i in range(301)]))

    with pytest.raises(StaleAggregatesError, match=r"1 passing hotkeys .*\(alice\)"):
        training_listings(published_folder)
    code, out, err = run_query(capsys, published_folder, "select count(*) as n from listings")
    assert (code, json.loads(out)) == (0, [{"n": 321}])
    assert err.startswith("sn46: note: 1 hotkeys committed curated data after the aggregates were computed")
