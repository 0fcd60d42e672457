"""Listing aggregates over N curated rows: DuckDB against the same aggregates in pandas, in one run.

Setup: a folder store with 200 committed hotkeys (N / 200 curated rows each in
3 job files, 3% rejected rows, a few rejected files); every hotkey shares 10%
of its zpids with the next one at another price (contested, not copies), and
every 10th hotkey copies 5% of its rows verbatim from the previous one, later.

Measured, each engine in its own child process (so peak memory is its own):
``compute_aggregates`` with DuckDB capped at ``memory_limit='2GB'`` and
``threads=2``, and the same tables computed with pandas (the baseline: read
the same committed files, find copies, per-job and per-miner stats, zip stats,
scores). Both read parquet from the store and stop with the tables in memory.
The two results are compared before the table is printed.

    .venv/bin/python benchmarks/aggregates_bench.py                 # 10,000,000 rows
    .venv/bin/python benchmarks/aggregates_bench.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 11, 20, tzinfo=UTC)
HOTKEYS = 200
JOBS = 3
ZIPS = 3000
COPIER_EVERY, COPIED_SHARE, SHARED_SHARE, REJECTED_SHARE = 10, 0.05, 0.10, 0.03
ROW_REASONS = ("missing_required", "implausible_value", "zip_mismatch", "stale", "duplicate")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, help="keep the generated store here, and reuse it when present")
    parser.add_argument("--engine", choices=("duckdb", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        run_engine(args.engine, args.store, Path(args.out))
        return

    with tempfile.TemporaryDirectory(prefix="sn46-agg-bench-") as folder:
        work = Path(folder)
        store = args.data or work / "store"
        if not (store / "curated").exists():
            started = time.perf_counter()
            size = write_curated_area(store, args.rows)
            print(
                f"setup: {args.rows:,} curated rows, {HOTKEYS} hotkeys, {size / 2**20:,.0f} MiB of parquet "
                f"written in {time.perf_counter() - started:.1f} s"
            )
        rows = curated_rows(store)
        results = {engine: child(engine, store, work / engine) for engine in ("duckdb", "pandas")}
        agree = compare(work / "duckdb", work / "pandas")
    duck, pandas = results["duckdb"], results["pandas"]
    load = os.getloadavg()[0]
    print(f"\n{rows:,} curated rows, {os.cpu_count()} cores, load average {load:.1f} at the end")
    print(f"{'engine':<28}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}{'rows/s':>14}")
    for label, result in (("pandas (baseline)", pandas), ("DuckDB (2 GiB, 2 threads)", duck)):
        print(
            f"{label:<28}{result['seconds']:>9.1f}{result['cpu_seconds']:>9.1f}{result['peak_mib']:>14,.0f}"
            f"{rows / result['seconds']:>14,.0f}"
        )
    print(
        f"\nspeedup {pandas['seconds'] / duck['seconds']:.1f}x wall, "
        f"{pandas['cpu_seconds'] / duck['cpu_seconds']:.1f}x CPU; "
        f"{duck['copies']:,} cross-miner copies, {duck['zipcodes']:,} zips; results agree: {agree}"
    )


def curated_rows(store: Path) -> int:
    """Committed curated rows in the store (from the parquet footers)."""
    from sn46_pipelines.listings.sources import curated_sources
    from sn46_pipelines.objectstore import open_store

    return curated_sources(open_store(f"file://{store}")).listings.count_rows()


def child(engine: str, store: Path, out: Path) -> dict:
    """Run one engine in a fresh process, so its peak memory is its own."""
    out.mkdir()
    subprocess.run(
        [sys.executable, __file__, "--engine", engine, "--store", str(store), "--out", str(out)], check=True
    )
    return json.loads((out / "timing.json").read_text())


def run_engine(engine: str, store_root: str, out: Path) -> None:
    """Time one engine on the committed area; write its tables and timing under ``out``."""
    import pyarrow.parquet as pq

    from sn46_pipelines.listings.sources import curated_sources
    from sn46_pipelines.objectstore import open_store

    store = open_store(f"file://{store_root}")
    started, cpu_started = time.perf_counter(), time.process_time()
    sources = curated_sources(store)
    if engine == "duckdb":
        from sn46_pipelines.listings.aggregates import compute_aggregates

        tables = compute_aggregates(sources, now=NOW, memory_limit="2GB", threads=2).tables
    else:
        tables = pandas_aggregates(sources)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    for name in ("miner_scores", "zipcode_stats"):
        pq.write_table(tables[name], out / f"{name}.parquet")
    timing = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # all threads: DuckDB's two count twice
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "copies": tables["cross_miner_duplicates"].num_rows,
        "zipcodes": tables["zipcode_stats"].num_rows,
    }
    (out / "timing.json").write_text(json.dumps(timing))


def pandas_aggregates(sources) -> dict:
    """The same four tables as ``compute_aggregates``, the way one would write them in pandas."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from sn46_pipelines.listings.schema import COLUMNS
    from sn46_pipelines.listings.scoring import ScoringRules

    def plain(table: pa.Table) -> pd.DataFrame:
        schema = pa.schema(
            [
                pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                for f in table.schema
            ]
        )
        return table.cast(schema).to_pandas()

    df, quarantine = plain(sources.listings.to_table()), plain(sources.quarantine.to_table())
    key, row_id = ["zpid", "price", "datetime"], ["hotkey", "file_key", "row_index"]

    spread = df.groupby(key, sort=False)["hotkey"].agg(["min", "max"])
    contested = spread.index[spread["min"] != spread["max"]].to_frame(index=False)
    claims = df[[*key, "hotkey", "job_id", "file_key", "row_index", "uploaded_at"]].merge(contested, on=key)
    claims = claims.sort_values([*key, "uploaded_at", "hotkey", "file_key", "row_index"])
    first = claims.drop_duplicates(key)[[*key, "hotkey", "file_key"]]
    first = first.rename(columns={"hotkey": "original_hotkey", "file_key": "original_file_key"})
    claims = claims.merge(first, on=key)
    copies = claims[claims["hotkey"] != claims["original_hotkey"]]

    df["filled"] = df[list(COLUMNS)].notna().sum(axis=1) / len(COLUMNS)
    is_copy = df[row_id].merge(copies[row_id].assign(copy=True), on=row_id, how="left")["copy"].notna()
    needed = ["hotkey", "job_id", "zpid", "datetime", "price", "living_area", "zip_code", "filled"]
    listings = df.loc[~is_copy.to_numpy(), needed]
    del df
    rejections = pd.concat(
        [
            quarantine[["hotkey", "job_id", "row_index", "reason"]],
            copies[["hotkey", "job_id", "row_index"]].assign(reason="cross_miner_copy"),
        ]
    )
    rejections["job_id"] = rejections["job_id"].fillna("(unknown)")

    def stats(keys: list[str]) -> pd.DataFrame:
        accepted = listings.groupby(keys).agg(
            rows_accepted=("zpid", "size"),
            unique_zpids=("zpid", "nunique"),
            completeness=("filled", "mean"),
            newest_listing=("datetime", "max"),
            median_listing=("datetime", "median"),
        )
        rows = rejections[rejections["row_index"].notna()]
        by_reason = rows.groupby([*keys, "reason"]).size().unstack(fill_value=0).add_prefix("rejected_")
        files = rejections[rejections["row_index"].isna()].groupby(keys).size().rename("files_rejected")
        table = accepted.join([by_reason, files], how="outer")
        counts = [
            c for c in table.columns if c.startswith(("rows_", "rejected_", "files_")) or c == "unique_zpids"
        ]
        table[counts] = table[counts].fillna(0).astype("int64")
        for code in ("duplicate", "cross_miner_copy", "implausible_value", "zip_mismatch"):
            if f"rejected_{code}" not in table:
                table[f"rejected_{code}"] = 0
        table["rows_rejected"] = table.filter(like="rejected_").sum(axis=1)
        submitted = (table["rows_accepted"] + table["rows_rejected"]).replace(0, np.nan)
        table["rows_submitted"] = table["rows_accepted"] + table["rows_rejected"]
        table["duplicate_rate"] = table["rejected_duplicate"] / submitted
        # A share of the current listings (accepted plus copies), as aggregates.py defines it.
        current = (table["rows_accepted"] + table["rejected_cross_miner_copy"]).replace(0, np.nan)
        table["copy_rate"] = table["rejected_cross_miner_copy"] / current
        table["plausibility_rate"] = 1 - table["rejected_implausible_value"] / submitted
        table["zip_match_rate"] = 1 - table["rejected_zip_mismatch"] / submitted
        table["median_age_days"] = (NOW - table["median_listing"]).dt.total_seconds() / 86400
        return table.reset_index()

    per_job, miners = stats(["hotkey", "job_id"]), stats(["hotkey"])
    rules = ScoringRules()
    miners["score"] = (
        np.minimum(1.0, miners["rows_accepted"] / rules.full_credit_rows)
        * (miners["rows_accepted"] / miners["rows_submitted"].replace(0, np.nan)).fillna(0)
        * miners["completeness"].fillna(0)
        * (1 - miners["copy_rate"].fillna(0))
    )
    failures = {
        "too_few_rows": miners["rows_accepted"] < rules.min_rows,
        "low_score": miners["score"] < rules.min_score,
        "copies": miners["copy_rate"] > rules.max_copy_rate,
        "duplicates": miners["duplicate_rate"] > rules.max_duplicate_rate,
        "implausible_values": miners["plausibility_rate"] < rules.min_plausibility_rate,
        "zip_mismatches": miners["zip_match_rate"] < rules.min_zip_match_rate,
        "incomplete": miners["completeness"] < rules.min_completeness,
    }
    miners["reasons"] = [
        [code for code, failed in failures.items() if failed.iloc[i]] for i in range(len(miners))
    ]
    miners["passed"] = miners["reasons"].str.len() == 0

    located = listings[listings["zip_code"].notna()].assign(
        price_per_sqft=lambda d: (d["price"] / d["living_area"]).where(d["living_area"] > 0)
    )
    zips = (
        located.groupby("zip_code")
        .agg(
            listings=("zpid", "size"),
            hotkeys=("hotkey", "nunique"),
            median_price=("price", "median"),
            median_price_per_sqft=("price_per_sqft", "median"),
            newest_listing=("datetime", "max"),
        )
        .reset_index()
    )
    return {
        "miner_scores": pa.Table.from_pandas(miners, preserve_index=False),
        "miner_job_stats": pa.Table.from_pandas(per_job, preserve_index=False),
        "zipcode_stats": pa.Table.from_pandas(zips, preserve_index=False),
        "cross_miner_duplicates": pa.Table.from_pandas(copies, preserve_index=False),
    }


def compare(duck_out: Path, pandas_out: Path) -> str:
    """'yes', or which numbers differ between the engines."""
    import numpy as np
    import pyarrow.parquet as pq

    differences = []
    for name, key, columns in (
        ("miner_scores", "hotkey", ("rows_accepted", "rows_rejected", "score", "passed")),
        ("zipcode_stats", "zip_code", ("listings", "median_price", "median_price_per_sqft")),
    ):
        duck = pq.read_table(duck_out / f"{name}.parquet").to_pandas().set_index(key).sort_index()
        pandas = pq.read_table(pandas_out / f"{name}.parquet").to_pandas().set_index(key).sort_index()
        if list(duck.index) != list(pandas.index):
            differences.append(f"{name}: different {key}s")
            continue
        for column in columns:
            if not np.allclose(duck[column].astype(float), pandas[column].astype(float), equal_nan=True):
                differences.append(f"{name}.{column}")
    return "yes" if not differences else "NO: " + ", ".join(differences)


def write_curated_area(root: Path, rows: int) -> int:
    """Commit ``HOTKEYS`` hotkeys' curated sets as ingest would; return the parquet bytes written."""
    import pyarrow.parquet as pq

    from sn46_pipelines.listings.ingest import HotkeyManifest
    from sn46_pipelines.listings.layout import curated_prefix, manifest_key
    from sn46_pipelines.listings.schema import CURATED_SCHEMA, QUARANTINE_SCHEMA

    written = 0
    for index in range(HOTKEYS):
        hotkey = f"5Bench{index:04d}"
        curated, quarantine = _curated_set(index, hotkey, rows // HOTKEYS)
        manifest = HotkeyManifest(
            hotkey=hotkey,
            listings_key=curated_prefix(hotkey) + "listings-bench.parquet",
            quarantine_key=curated_prefix(hotkey) + "quarantine-bench.parquet",
            updated_at=NOW.isoformat(),
        )
        (root / curated_prefix(hotkey)).mkdir(parents=True)
        pq.write_table(_declared(curated, CURATED_SCHEMA), root / manifest.listings_key, compression="zstd")
        pq.write_table(
            _declared(quarantine, QUARANTINE_SCHEMA), root / manifest.quarantine_key, compression="zstd"
        )
        (root / manifest_key(hotkey)).write_bytes(manifest.to_bytes())
        written += sum((root / k).stat().st_size for k in (manifest.listings_key, manifest.quarantine_key))
    return written


def _declared(table, schema):
    """``table`` in ``schema``: columns it lacks (the epoch columns of job files, say) are null, as in
    what ingest writes."""
    import pyarrow as pa

    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


def _curated_set(index: int, hotkey: str, n: int):
    """One hotkey's curated listings (3 job files) and quarantine, in plain Arrow types."""
    import numpy as np
    import pyarrow as pa

    table = _hotkey_rows(index, n)
    if index % COPIER_EVERY == COPIER_EVERY - 1:  # a copier: its tail is the previous hotkey's head
        copied = int(n * COPIED_SHARE)
        table = pa.concat_tables([table.slice(0, n - copied), _hotkey_rows(index - 1, n).slice(0, copied)])
    rng = np.random.default_rng([46, index, 1])
    job = np.sort(rng.integers(0, JOBS, n))
    zips = (rng.choice(ZIPS, JOBS, replace=False) + 10_000).astype(str)
    job_ids = np.char.add("zillow_zip_", zips)
    file_names = np.char.add(job_ids, "/data_20261119_000000.parquet")
    file_keys = np.char.add(f"data/hotkey={hotkey}/job_id=", file_names)
    # files of later hotkeys were uploaded later: a copier's file lands after its donor's
    first_upload = NOW - timedelta(days=1) + timedelta(seconds=index)
    uploaded_us = int(first_upload.timestamp() * 1e6) + job * 1_000_000
    provenance = {
        "hotkey": pa.array(np.full(n, hotkey)),
        "job_id": pa.array(job_ids[job]),
        "file_key": pa.array(file_keys[job]),
        "row_index": pa.array(np.arange(n) - np.searchsorted(job, job), pa.int32()),
        "uploaded_at": pa.array(uploaded_us).cast(pa.timestamp("us", "UTC")),
    }
    curated = table.set_column(table.schema.get_field_index("zip_code"), "zip_code", pa.array(zips[job]))
    for name, column in provenance.items():
        curated = curated.append_column(name, column)

    rejected = np.sort(rng.choice(n, int(n * REJECTED_SHARE), replace=False))
    whole_file = index % 20 == 0  # a few hotkeys also have one file rejected whole
    quarantine = pa.table(
        {
            "hotkey": np.full(len(rejected) + whole_file, hotkey),
            "job_id": np.append(job_ids[job[rejected]], job_ids[:whole_file]),
            "file_key": np.append(file_keys[job[rejected]], np.char.add(file_keys[:whole_file], ".broken")),
            # rows the curated set does not hold (their own files' positions), then the whole file
            "row_index": pa.array(list(rejected + n) + [None] * whole_file, pa.int32()),
            "reason": np.append(
                np.array(ROW_REASONS)[rng.integers(0, len(ROW_REASONS), len(rejected))],
                ["unreadable_file"] * whole_file,
            ),
            "detail": np.full(len(rejected) + whole_file, "benchmark rejection"),
        }
    )
    return curated, quarantine


def _hotkey_rows(index: int, n: int):
    """The 18 upload columns of hotkey ``index``'s own listings, from its own random stream."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([46, index])
    zpid = np.arange(index * n, (index + 1) * n, dtype=np.int64) + 10**8
    price = np.round(rng.lognormal(12.9, 0.5, n), -3)
    shared = int(n * SHARED_SHARE)  # the next hotkey's zpids, at another price: contested, not copied
    zpid[:shared] = np.arange((index + 2) * n - shared, (index + 2) * n) + 10**8
    price[:shared] += 1000
    zpid_text = pa.array(zpid).cast(pa.string())
    url = pc.binary_join_element_wise("https://www.zillow.com/homedetails/", zpid_text, "_zpid/", "")
    stamps = (NOW.timestamp() - rng.uniform(0, 29 * 86400, n)) * 1e6
    living = rng.uniform(600, 4000, n).round()
    return pa.table(
        {
            "uri": url,
            "datetime": pa.array(stamps.astype("int64")).cast(pa.timestamp("us", "UTC")),
            "label": pa.array(rng.choice(["for_sale", "sold"], n)),
            "zpid": zpid_text,
            "price": price,
            "address": pc.binary_join_element_wise(zpid_text, " Main St", ""),
            "bedrooms": rng.integers(0, 7, n).astype(np.int32),
            "bathrooms": rng.integers(1, 9, n) / 2,
            "living_area": pa.array(living, mask=rng.random(n) < 0.03),
            "home_type": pa.array(rng.choice(["SINGLE_FAMILY", "CONDO", "TOWNHOUSE"], n)),
            "home_status": pa.array(rng.choice(["FOR_SALE", "RECENTLY_SOLD"], n)),
            "days_on_zillow": rng.integers(0, 120, n).astype(np.int32),
            "url": url,
            "zip_code": pa.nulls(n, pa.string()),
            "city": pa.array(np.full(n, "Austin"), mask=rng.random(n) < 0.05),
            "state": pa.array(np.full(n, "TX")),
            "latitude": rng.uniform(30.1, 30.5, n),
            "longitude": rng.uniform(-97.9, -97.6, n),
        }
    )


if __name__ == "__main__":
    main()
