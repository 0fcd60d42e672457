"""The aggregate checks on tables broken on purpose, one defect at a time."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sn46_pipelines.listings.aggregate_checks import (
    check_keys,
    check_known_hotkeys,
    check_row_counts,
    check_schema,
    check_scores,
)
from sn46_pipelines.listings.aggregates import Aggregates, aggregate_store
from tests.listings.aggregates.aggregates_fixtures import NOW, commit, listing, rows_of, upload


@pytest.fixture
def good(folder_store) -> Aggregates:
    """alice: 3 curated rows (one copied by bob), bob: 2."""
    commit(folder_store, "alice", rows_of(upload("alice"), listing("1"), listing("2"), listing("3")))
    later = upload("bob", uploaded_at=NOW)
    commit(folder_store, "bob", rows_of(later, listing("1"), listing("4")))
    return aggregate_store(folder_store, now=NOW)


def replaced(aggregates: Aggregates, name: str, column: str, values: list) -> Aggregates:
    table = aggregates[name]
    index = table.schema.get_field_index(column)
    field = table.schema.field(index)
    broken = table.set_column(index, field.name, pa.array(values, field.type))
    return Aggregates(aggregates.hotkeys, {**aggregates.tables, name: broken})


def test_good_aggregates_pass_every_check(good):
    assert check_schema(good).passed
    assert check_keys(good).passed
    assert check_scores(good).passed
    assert check_known_hotkeys(good, ["alice", "bob", "carol"]).passed
    outcome = check_row_counts(good, {"alice": 3, "bob": 2})
    assert outcome.passed and outcome.metadata == {"hotkeys_checked": 2, "mismatches": 0}


def test_schema_names_the_missing_and_the_mistyped_column(good):
    scores = good["miner_scores"].drop_columns(["copy_rate"])
    index = scores.schema.get_field_index("score")
    scores = scores.set_column(index, "score", scores["score"].cast(pa.float32()))
    outcome = check_schema(Aggregates(good.hotkeys, {**good.tables, "miner_scores": scores}))
    assert not outcome.passed
    assert "miner_scores.copy_rate missing" in outcome.description
    assert "miner_scores.score is float, expected double" in outcome.description


def test_null_keys_are_counted_per_column(good):
    outcome = check_keys(replaced(good, "cross_miner_duplicates", "original_hotkey", [None]))
    assert not outcome.passed
    assert "cross_miner_duplicates.original_hotkey: 1 nulls" in outcome.description
    assert outcome.metadata == {"null_keys": 1}


@pytest.mark.parametrize("bad", [1.5, -0.1, None, float("nan")])
def test_a_score_outside_the_unit_interval_or_missing_fails(good, bad):
    outcome = check_scores(replaced(good, "miner_scores", "score", [0.5, bad]))
    assert not outcome.passed
    assert outcome.description.startswith("scores outside [0, 1] or missing: bob:")


def test_edge_scores_zero_and_one_pass(good):
    assert check_scores(replaced(good, "miner_scores", "score", [0.0, 1.0])).passed


def test_hotkeys_that_are_not_partitions_are_named(good):
    outcome = check_known_hotkeys(good, ["alice"])
    assert (outcome.passed, outcome.metadata) == (False, {"unknown_hotkeys": 1})
    assert outcome.description.endswith(": bob")


def test_row_counts_must_match_what_ingest_reported(good):
    outcome = check_row_counts(good, {"alice": 4, "bob": None})
    assert not outcome.passed
    assert "alice: 3 curated rows, miner_listings reported 4" in outcome.description
    assert "bob: no miner_listings materialization reports curated_rows" in outcome.description


def test_long_failure_lists_are_cut_short(good):
    hotkeys = [f"hk{i:02d}" for i in range(8)]
    scores = pa.table({"hotkey": hotkeys, "curated_rows": pa.array(range(8), pa.int64())})
    outcome = check_row_counts(Aggregates(hotkeys, {"miner_scores": scores}), {})
    assert outcome.description.count("no miner_listings") == 5
    assert outcome.description.endswith("; and 3 more")
