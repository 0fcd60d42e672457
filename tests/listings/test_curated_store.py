"""The curated set in the store: written whole, read back in declared types, merged run after run."""

from __future__ import annotations

import pyarrow as pa
from listings_helpers import HOTKEY, NOW, listings

from sn46_pipelines.demo import seed_demo
from sn46_pipelines.listings import (
    CURATED_SCHEMA,
    QUARANTINE_SCHEMA,
    curate_hotkey,
    hotkey_prefix,
    listings_key,
    quarantine_key,
    read_curated,
    write_curated,
)


def test_before_the_first_run_the_set_is_empty(store) -> None:
    curated = read_curated(store, HOTKEY)
    assert curated.listings.schema == CURATED_SCHEMA and curated.listings.num_rows == 0
    assert curated.quarantine.schema == QUARANTINE_SCHEMA and curated.quarantine.num_rows == 0


def test_two_runs_accumulate_listings_and_quarantine(store, uploads) -> None:
    def run(files):
        previous = read_curated(store, HOTKEY)
        result = curate_hotkey(store, HOTKEY, files, previous.listings, now=NOW)
        quarantine = pa.concat_tables([previous.quarantine, result.quarantine])
        write_curated(store, HOTKEY, result.listings, quarantine)
        return result

    run([uploads.put(listings(20)), uploads.put(listings(5), rows=6)])
    assert store.exists(listings_key(HOTKEY)) and store.exists(quarantine_key(HOTKEY))
    assert listings_key(HOTKEY) == f"curated/hotkey={HOTKEY}/listings.parquet"
    run([uploads.put(listings(10, first_zpid=10_000_015))])  # 5 zpids overlap, newer wins either way

    curated = read_curated(store, HOTKEY)
    assert curated.listings.schema == CURATED_SCHEMA
    assert curated.listings.num_rows == 25
    expected = [str(z) for z in range(10_000_000, 10_000_025)]
    assert sorted(curated.listings.column("zpid").to_pylist()) == expected
    reasons = curated.quarantine.column("reason").cast(pa.string()).to_pylist()
    assert sorted(reasons) == ["duplicate"] * 5 + ["filename_row_mismatch"]


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
