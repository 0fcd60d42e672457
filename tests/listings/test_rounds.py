"""Upload rounds: the same miners upload the same homes again, as real SN46 miners do every epoch.

Each round seeds the demo uploads dated two hours after the last (the same
homes, scraped again), ingests every miner and computes the scores, as the
deployment does round after round.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregates import aggregate_store
from sn46_pipelines.listings.ingest import ingest_hotkey, read_manifest
from sn46_pipelines.listings.keys import parse_upload_key, upload_key
from sn46_pipelines.listings.layout import audit_prefix
from sn46_pipelines.listings.scoring import ScoringRules

START = datetime(2026, 12, 3, tzinfo=UTC)
ROUNDS = 6
#: Defect -> the score column that shows it in every round (only the copier plants enough to fail).
SHOWN_BY = {"copied_rows": "copy_rate", "duplicates": "duplicate_rate", "truncated_file": "files_rejected"}


def ingest_all(store, report, now):
    return {m.hotkey: ingest_hotkey(store, m.hotkey, now=now) for m in report.miners}


def scores(store, now, rules: ScoringRules | None = None):
    table = aggregate_store(store, now=now, rules=rules)["miner_scores"]
    return {row["hotkey"]: row for row in table.to_pylist()}


@pytest.mark.parametrize("store_url", ["file", "s3"], indirect=True)
def test_six_rounds_keep_honest_miners_passing_and_catch_every_defect_each_round(store):
    history = []
    for index in range(ROUNDS):
        now = START + timedelta(hours=2 * index)
        report = seed_demo(store, miners=12, validators=1, seed=0, now=now)
        ingests = ingest_all(store, report, now + timedelta(minutes=30))
        for miner in report.miners:  # this round's planted defects, each found in this round's files
            found = ingests[miner.hotkey].metadata()
            assert {r: found[f"rejected_{r}"] for r in miner.expected} == miner.expected, miner.defects
        history.append(scores(store, now + timedelta(minutes=30)))
        for miner in report.miners:
            row = history[-1][miner.hotkey]
            for defect in set(miner.defects) & set(SHOWN_BY):
                assert row[SHOWN_BY[defect]] > 0, (index, defect)
            assert ("copies" in row["reasons"]) == ("copied_rows" in miner.defects), index
    honest = [m.hotkey for m in report.miners if not m.defects]
    assert honest
    for previous, current in itertools.pairwise(history):
        for hotkey in honest:
            assert current[hotkey]["passed"], (hotkey, current[hotkey]["reasons"])
            assert current[hotkey]["duplicate_rate"] == 0.0  # a later upload of a home is an update
            assert abs(current[hotkey]["score"] - previous[hotkey]["score"]) <= 0.05
    # The folder holds the window, not the history: one listing per home, one run record per round.
    manifest = read_manifest(store, honest[0])
    assert len(manifest.runs) == ROUNDS
    first, last = history[0][honest[0]], history[-1][honest[0]]
    assert last["curated_rows"] == first["curated_rows"]  # the same homes, re-observed
    assert last["rows_submitted"] == ROUNDS * first["rows_submitted"]


def test_a_miner_that_stops_uploading_decays_as_its_listings_leave_the_window(store):
    report = seed_demo(store, miners=3, validators=1, seed=0, now=START)
    ingest_all(store, report, START)
    miner = next(m.hotkey for m in report.miners if not m.defects)
    window = ScoringRules().window
    # The demo's listings were scraped over the week before START: they leave one by one.
    later = [scores(store, START + window + timedelta(days=d))[miner] for d in (-8, -5, -3, -1, 1)]
    accepted = [row["rows_accepted"] for row in later]
    assert accepted == sorted(accepted, reverse=True) and accepted[0] > accepted[-2] > 0
    assert [row["score"] for row in later] == sorted((row["score"] for row in later), reverse=True)
    gone = later[-1]  # a window after its newest scrape nothing is current
    assert (gone["rows_accepted"], gone["score"], gone["passed"]) == (0, 0.0, False)
    assert "too_few_rows" in gone["reasons"]
    assert gone["curated_rows"] > 0  # still committed (and its uploads untouched) until it ingests again


def test_an_identical_upload_under_a_new_name_counts_once(store):
    report = seed_demo(store, miners=1, validators=1, seed=0, now=START)
    miner = report.miners[0].hotkey
    ingest_all(store, report, START)
    before = scores(store, START)[miner]
    original = parse_upload_key(report.miners[0].files[0].key)
    renamed = upload_key(miner, original.job_id, original.timestamp + timedelta(hours=2), original.rows)
    store.put(renamed, store.get(original.key))
    again = ingest_hotkey(store, miner, now=START + timedelta(hours=2))
    assert [(f.key, f.status, f.same_as) for f in again.result.files] == [
        (renamed, "identical", original.key)
    ]
    assert again.metadata()["files_identical"] == 1
    after = scores(store, START + timedelta(hours=2))[miner]
    for column in ("rows_submitted", "rows_accepted", "rows_rejected", "score"):
        assert after[column] == before[column], column


def test_rejections_leave_the_window_for_the_audit_folder(store):
    report = seed_demo(store, miners=12, validators=1, seed=0, now=START)
    defective = next(m for m in report.miners if "impossible_values" in m.defects)
    ingest_hotkey(store, defective.hotkey, now=START)
    assert scores(store, START)[defective.hotkey]["rejected_implausible_value"] > 0
    month = START + timedelta(days=31)
    seed_demo(store, miners=12, validators=1, seed=0, now=month)
    ingest_hotkey(store, defective.hotkey, now=month)
    # The new round has its own implausible rows; the first round's left the window...
    fresh = scores(store, month)[defective.hotkey]
    assert fresh["rejected_implausible_value"] == defective.expected["implausible_value"]
    # ...and were kept, outside the curated area, for people to read.
    assert [o.key for o in store.list(audit_prefix(defective.hotkey))]
