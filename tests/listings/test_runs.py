"""Curation over several runs, and over the whole demo upload area."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from sn46_pipelines.demo import seed_demo
from sn46_pipelines.listings import CURATED_SCHEMA, curate_hotkey, hotkey_prefix
from tests.listings.listings_helpers import HOTKEY, NOW, listings


def test_runs_merge_into_one_row_per_zpid(store, uploads) -> None:
    first_files = [uploads.put(listings(20)), uploads.put(listings(5), rows=6)]
    first = curate_hotkey(store, HOTKEY, first_files, now=NOW)
    newer = listings(10, first_zpid=10_000_015)  # 5 zpids overlap, scraped after every row of the first run
    stamps = pa.array([NOW - timedelta(minutes=1)] * 10, newer.schema.field("datetime").type)
    newer = newer.set_column(1, "datetime", stamps)
    second_files = [uploads.put(newer)]
    second = curate_hotkey(store, HOTKEY, second_files, first.listings, now=NOW)

    assert second.listings.schema == CURATED_SCHEMA and second.listings.num_rows == 25
    expected = [str(z) for z in range(10_000_000, 10_000_025)]
    assert sorted(second.listings.column("zpid").to_pylist()) == expected
    assert first.reason_counts()["filename_row_mismatch"] == 1
    assert second.reason_counts()["duplicate"] == 5
    replaced = second.quarantine.column("file_key").cast(pa.string()).to_pylist()
    assert set(replaced) == {first.files[0].key}


def test_the_demo_upload_area_curates_to_exactly_the_planted_defects(store) -> None:
    report = seed_demo(store, miners=12, seed=11, now=NOW)
    for miner in report.miners:
        files = list(store.list(hotkey_prefix(miner.hotkey)))
        result = curate_hotkey(store, miner.hotkey, files, now=NOW)
        found = {reason: n for reason, n in result.reason_counts().items() if n}
        assert found == miner.expected, miner.defects
        seeded_rows = {f.key: f.rows for f in miner.files}
        rejected_files = [f for f in result.files if f.status == "rejected"]
        row_rejections = result.quarantine.num_rows - len(rejected_files)
        lost_with_files = sum(seeded_rows[f.key] for f in rejected_files)
        assert result.listings.num_rows + row_rejections + lost_with_files == sum(seeded_rows.values())
