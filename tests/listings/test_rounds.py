"""Upload rounds: the same miners upload the same homes again, as real SN46 miners do every epoch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregates import aggregate_store
from sn46_pipelines.listings.ingest import ingest_hotkey

START = datetime(2026, 12, 3, tzinfo=timezone.utc)
ROUNDS = 3


def scores(store, report, now):
    for miner in report.miners:
        ingest_hotkey(store, miner.hotkey, now=now)
    table = aggregate_store(store, now=now)["miner_scores"]
    return {row["hotkey"]: row for row in table.to_pylist()}


@pytest.mark.parametrize("store_url", ["file", "s3"], indirect=True)
def test_honest_miners_keep_passing_round_after_round(store):
    history = []
    for index in range(ROUNDS):
        now = START + timedelta(hours=2 * index)
        report = seed_demo(store, miners=6, validators=1, seed=0, now=now)
        history.append(scores(store, report, now + timedelta(minutes=30)))
    honest = [m.hotkey for m in report.miners if not m.defects]
    duplicating = [m.hotkey for m in report.miners if "duplicates" in m.defects]
    assert honest and duplicating
    for previous, current in zip(history, history[1:], strict=False):
        for hotkey in honest:
            assert current[hotkey]["passed"], (hotkey, current[hotkey]["reasons"])
            assert current[hotkey]["duplicate_rate"] == 0.0  # a later upload of a home is an update
            assert abs(current[hotkey]["score"] - previous[hotkey]["score"]) <= 0.05
        for hotkey in duplicating:  # repeats inside one file, and within the hour, are still caught
            assert current[hotkey]["duplicate_rate"] > 0.0
