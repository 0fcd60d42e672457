"""Cross-miner copies: who uploaded a listing first owns it; later uploads by others are copies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sn46_pipelines.listings.aggregates import aggregate_store
from tests.listings.aggregates.aggregates_fixtures import NOW, UPLOADED, commit, listing, rows_of, upload


def copies_of(store) -> set[tuple[str, str, str]]:
    """(copier, zpid, original hotkey) of every copy found."""
    table = aggregate_store(store, now=NOW)["cross_miner_duplicates"]
    return {(r["hotkey"], r["zpid"], r["original_hotkey"]) for r in table.to_pylist()}


def scores_by_hotkey(aggregates) -> dict[str, dict]:
    return {r["hotkey"]: r for r in aggregates["miner_scores"].to_pylist()}


def test_the_later_upload_is_the_copy_and_counts_against_the_copier_only(folder_store):
    first = upload("zed", uploaded_at=UPLOADED)
    later = upload("amy", uploaded_at=UPLOADED + timedelta(minutes=1))
    commit(folder_store, "zed", rows_of(first, listing("1"), listing("2")))
    commit(folder_store, "amy", rows_of(later, listing("1"), listing("3")))

    aggregates = aggregate_store(folder_store, now=NOW)

    copy = aggregates["cross_miner_duplicates"].to_pylist()
    fields = ("hotkey", "zpid", "row_index", "original_hotkey", "original_file_key")
    assert [tuple(c[f] for f in fields) for c in copy] == [("amy", "1", 0, "zed", first["file_key"])]
    scores = scores_by_hotkey(aggregates)
    counts = ("rows_accepted", "rows_rejected", "copy_rate")
    assert tuple(scores["zed"][c] for c in counts) == (2, 0, 0.0)
    assert tuple(scores["amy"][c] for c in counts) == (1, 1, 0.5)
    assert scores["amy"]["rejected_cross_miner_copy"] == 1
    assert scores["amy"]["curated_rows"] == 2  # what ingest committed for amy: copies included


def test_same_zpid_with_another_price_or_date_is_not_a_copy(folder_store):
    commit(folder_store, "alice", rows_of(upload("alice"), listing("1", price=400_000.0, days_old=2)))
    commit(
        folder_store,
        "bob",
        rows_of(
            upload("bob", uploaded_at=UPLOADED + timedelta(hours=1)),
            listing("1", price=410_000.0, days_old=2),
            listing("1", price=400_000.0, days_old=3),
        ),
    )
    assert copies_of(folder_store) == set()


def test_a_tie_on_upload_time_goes_to_the_smaller_hotkey(folder_store):
    # same instant; "bob" sorts before "carl", whatever the file names say
    commit(folder_store, "carl", rows_of(upload("carl", name="a_first_name"), listing("1")))
    commit(folder_store, "bob", rows_of(upload("bob", name="z_last_name"), listing("1")))
    assert copies_of(folder_store) == {("carl", "1", "bob")}


def test_upload_time_beats_hotkey_order(folder_store):
    later = upload("bob", uploaded_at=UPLOADED + timedelta(seconds=1))
    commit(folder_store, "bob", rows_of(later, listing("1")))
    commit(folder_store, "carl", rows_of(upload("carl", uploaded_at=UPLOADED), listing("1")))
    assert copies_of(folder_store) == {("bob", "1", "carl")}


def test_every_later_hotkey_copies_the_first_one(folder_store):
    for offset, hotkey in enumerate(["first", "second", "third"]):
        file = upload(hotkey, uploaded_at=UPLOADED + timedelta(hours=offset))
        commit(folder_store, hotkey, rows_of(file, listing("1"), listing(f"own-{hotkey}")))
    assert copies_of(folder_store) == {("second", "1", "first"), ("third", "1", "first")}


def test_the_first_uploader_keeps_all_its_rows_even_when_it_repeats_itself(folder_store):
    early = upload("alice", name="f1")
    late = upload("alice", name="f2", uploaded_at=UPLOADED + timedelta(days=1))
    commit(folder_store, "alice", rows_of(early, listing("1")) + rows_of(late, listing("1")))
    bob = upload("bob", uploaded_at=UPLOADED + timedelta(hours=2))
    commit(folder_store, "bob", rows_of(bob, listing("1")))

    aggregates = aggregate_store(folder_store, now=NOW)

    assert copies_of(folder_store) == {("bob", "1", "alice")}
    assert scores_by_hotkey(aggregates)["alice"]["rows_accepted"] == 2


def test_copies_leave_the_accepted_listings_and_enter_the_quarantine(folder_store):
    from sn46_pipelines.listings.aggregates import write_aggregates
    from sn46_pipelines.listings.views import connect_views

    commit(folder_store, "alice", rows_of(upload("alice"), listing("1"), listing("2")))
    bob = upload("bob", uploaded_at=UPLOADED + timedelta(hours=1))
    commit(folder_store, "bob", rows_of(bob, listing("2")))
    write_aggregates(folder_store, aggregate_store(folder_store, now=NOW))

    con = connect_views(folder_store)
    accepted = con.sql("SELECT hotkey, zpid FROM listings ORDER BY ALL").fetchall()
    assert accepted == [("alice", "1"), ("alice", "2")]
    quarantined = con.sql("SELECT hotkey, row_index, reason, detail FROM quarantine").fetchall()
    assert len(quarantined) == 1
    hotkey, row_index, reason, detail = quarantined[0]
    assert (hotkey, row_index, reason) == ("bob", 0, "cross_miner_copy")
    assert "uploaded first by alice" in detail


@pytest.mark.parametrize("price", [400_000.0, 1234.5])
def test_copies_match_prices_exactly(folder_store, price):
    commit(folder_store, "alice", rows_of(upload("alice"), listing("1", price=price)))
    commit(
        folder_store,
        "bob",
        rows_of(upload("bob", uploaded_at=UPLOADED + timedelta(hours=1)), listing("1", price=price + 0.01)),
    )
    assert copies_of(folder_store) == set()
