"""Ingest benchmark, curation part: validate and curate 2,000,000 rows in 1,000 files.

Three contestants read the same files from a folder store, each in a fresh
process so its peak memory is its own:

* ``duckdb-read``  the floor: DuckDB reading every column of every file, nothing else;
* ``pandas``       a straightforward pandas implementation of the same rules;
* ``sn46``         ``sn46_pipelines.listings.curate_hotkey``, one call per hotkey.

Targets (issue 4): sn46 at least 5x the rows/s of pandas, within 3x of the
floor's time, peak memory under 1.5 GiB. pandas and sn46 must agree on the
outcome (rows kept, rejections by reason); the table says whether they do.

    python benchmarks/ingest_bench.py --part curate [--files 1000 --rows 2000 --hotkeys 20]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NOW = datetime(2026, 11, 23, tzinfo=UTC)
ROW_DEFECT_SHARE = 0.01  # of each kind: implausible price, stale date, blank address, zip mismatch
DUPLICATE_SHARE = 0.02  # rows re-uploaded from the hotkey's previous file


# -- data ---------------------------------------------------------------------------------------
def write_dataset(root: Path, files: int, rows: int, hotkeys: int, seed: int = 0) -> None:
    """Demo-style uploads with a realistic sprinkling of bad rows, two bad files and re-uploads."""
    from sn46_pipelines.demo.listings import synth_listings
    from sn46_pipelines.demo.places import PLACES
    from sn46_pipelines.demo.uploads import ZPID_BLOCK, job_id_for
    from sn46_pipelines.listings import upload_key

    rng = np.random.default_rng(seed)
    per_hotkey = files // hotkeys
    for h in range(hotkeys):
        hotkey = f"5BenchHotkey{h:04d}"
        next_zpid, previous = ZPID_BLOCK * (h + 1), None
        for f in range(per_hotkey):
            place = PLACES[(h + f) % len(PLACES)]
            zpids = next_zpid + np.cumsum(rng.integers(1, 50, rows))
            next_zpid = int(zpids[-1])
            written = NOW - timedelta(hours=per_hotkey - f, seconds=int(rng.integers(0, 3000)))
            table = synth_listings(rng, place, zpids, newest=written)
            table = _spoil_rows(rng, table, previous)
            previous = table
            data = pa.BufferOutputStream()
            pq.write_table(table, data)
            blob = data.getvalue().to_pybytes()
            if h == 0 and f == 1:
                blob = blob[: len(blob) // 2]  # truncated upload
            if h == 1 and f == 1:
                renamed = ["list_price" if c == "price" else c for c in table.column_names]
                table = table.rename_columns(renamed)
                data = pa.BufferOutputStream()
                pq.write_table(table, data)
                blob = data.getvalue().to_pybytes()
            path = root / upload_key(hotkey, job_id_for(place), written, table.num_rows)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)


def _spoil_rows(rng: np.random.Generator, table: pa.Table, previous: pa.Table | None) -> pa.Table:
    n = table.num_rows
    k = int(n * ROW_DEFECT_SHARE)
    picks = rng.permutation(n)[: 4 * k].reshape(4, k)
    price = table.column("price").to_numpy().copy()
    price[picks[0]] = 1.0
    stamps = table.column("datetime").cast(pa.int64()).to_numpy().copy()
    stamps[picks[1]] -= int(90 * 86400e6)
    address = np.array(table.column("address").to_pylist(), dtype=object)
    address[picks[2]] = " "
    zips = np.array(table.column("zip_code").to_pylist(), dtype=object)
    zips[picks[3]] = "00501"
    table = (
        table.set_column(4, "price", pa.array(price))
        .set_column(1, "datetime", pa.array(stamps).cast(table.schema.field("datetime").type))
        .set_column(5, "address", pa.array(address, pa.string()))
        .set_column(13, "zip_code", pa.array(zips, pa.string()))
    )
    if previous is not None:  # re-uploads of listings from the previous file, same zip job or not
        d = int(n * DUPLICATE_SHARE)
        zpid = np.array(table.column("zpid").to_pylist(), dtype=object)
        zpid[rng.permutation(n)[:d]] = rng.choice(np.array(previous.column("zpid").to_pylist()), d)
        table = table.set_column(3, "zpid", pa.array(zpid, pa.string()))
    return table


def upload_files(root: Path) -> list[Path]:
    return sorted(root.glob("data/hotkey=*/job_id=*/*.parquet"))


# -- contestants (each runs in its own process) -------------------------------------------------
def run_duckdb(root: Path) -> dict:
    import duckdb

    paths = [str(p) for p in upload_files(root) if _readable(p)]
    con = duckdb.connect()
    reader = con.execute("SELECT * FROM read_parquet(?, union_by_name = true)", [paths]).to_arrow_reader()
    rows = sum(batch.num_rows for batch in reader)
    return {"rows_kept": rows}


def _readable(path: Path) -> bool:
    """The floor reads only files DuckDB can open (the truncated upload would abort it)."""
    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError):
        return False
    return True


def run_sn46(root: Path) -> dict:
    from sn46_pipelines.listings import curate_hotkey
    from sn46_pipelines.objectstore import open_store

    store = open_store(f"file://{root}")
    kept, reasons = 0, {}
    for prefix in store.list_prefixes("data/"):
        hotkey = prefix[len("data/hotkey=") : -1]
        result = curate_hotkey(store, hotkey, list(store.list(prefix)), now=NOW)
        kept += result.listings.num_rows
        for reason, count in result.reason_counts().items():
            reasons[reason] = reasons.get(reason, 0) + count
    return {"rows_kept": kept, "rejected": {r: c for r, c in reasons.items() if c}}


def run_pandas(root: Path) -> dict:
    """The same rules, written the obvious pandas way: one file at a time, then row masks."""
    import pandas as pd

    from sn46_pipelines.listings import COLUMNS, Rules, parse_upload_key

    rules = Rules()
    key_pattern = re.compile(r"data_\d{8}_\d{6}_(\d+)(?:_[0-9a-f]{16})?\.parquet")
    kept, reasons = 0, {}

    def reject(reason: str, count: int = 1) -> None:
        reasons[reason] = reasons.get(reason, 0) + count

    for hotkey_dir in sorted((root / "data").iterdir()):
        frames = []
        for path in sorted(hotkey_dir.glob("job_id=*/*.parquet")):
            key = str(path.relative_to(root))
            match = key_pattern.fullmatch(path.name)
            if not match:
                reject("filename_row_mismatch")
                continue
            if not rules.min_file_size <= path.stat().st_size <= rules.max_file_size:
                reject("file_size")
                continue
            try:
                df = pd.read_parquet(path)
            except (pa.ArrowException, OSError):  # as _readable: a truncated or corrupt upload
                reject("unreadable_file")
                continue
            if len(df) != int(match.group(1)):
                reject("filename_row_mismatch")
                continue
            if any(c not in df.columns for c in COLUMNS):
                reject("schema_mismatch")
                continue
            df = df[list(COLUMNS)].copy()
            df["zpid"] = df["zpid"].astype(str)
            parsed = parse_upload_key(key)
            df["job_zip"] = parsed.job_zip
            df["file"], df["job_id"], df["written"] = key, parsed.job_id, parsed.timestamp
            df["uploaded_at"] = path.stat().st_mtime
            frames.append(df)
        df = pd.concat(frames, ignore_index=True)
        reason = pd.Series(None, index=df.index, dtype=object)

        def flag(mask: pd.Series, code: str, reason: pd.Series = reason) -> None:
            reason[mask & reason.isna()] = code

        for column in ("zpid", "address", "price", "home_type", "home_status", "datetime"):
            values = df[column]
            blank = values.str.strip().eq("") if pd.api.types.is_string_dtype(values) else False
            flag(values.isna() | blank, "missing_required")
        for column, (low, high) in rules.ranges().items():
            flag((df[column] < low) | (df[column] > high), "implausible_value")
        inside = df["latitude"].isna() | df["longitude"].isna()
        for south, north, west, east in rules.us_regions:
            inside |= df["latitude"].between(south, north) & df["longitude"].between(west, east)
        flag(~inside, "implausible_value")
        zip_ok = df["zip_code"].isna() | df["zip_code"].str.fullmatch(r"[0-9]{5}").fillna(False).astype(bool)
        flag(~zip_ok, "zip_mismatch")
        flag(df["job_zip"].notna() & (df["zip_code"] != df["job_zip"]), "zip_mismatch")
        now = pd.Timestamp(NOW)
        flag(df["datetime"] > now + rules.clock_skew, "future_date")
        flag(df["datetime"] < now - rules.freshness, "stale")
        for code, count in reason.value_counts().items():
            reject(code, int(count))
        # Newest per zpid: the latest scrape, then the first upload, then the later row. A loser is a
        # duplicate when it repeats its winner within one upload window (same file, or the same job's
        # files written less than rules.duplicate_window apart); otherwise it is an earlier round's
        # observation that the newer one updates, which costs the miner nothing.
        good = df[reason.isna()].reset_index()
        good["upload_order"] = -good["uploaded_at"]
        good = good.sort_values(["datetime", "upload_order", "index"])
        winner = good.groupby("zpid", sort=False).tail(1).set_index("zpid")
        losers = good[good.duplicated("zpid", keep="last")]
        won_by = winner.loc[losers["zpid"]]
        apart = np.abs(losers["written"].to_numpy() - won_by["written"].to_numpy())
        same_job = losers["job_id"].to_numpy() == won_by["job_id"].to_numpy()
        same_file = losers["file"].to_numpy() == won_by["file"].to_numpy()
        same_upload = same_file | (same_job & (apart < rules.duplicate_window))
        reject("duplicate", int(same_upload.sum()))
        kept += len(winner)
    return {"rows_kept": kept, "rejected": reasons}


CONTESTANTS = {"duckdb-read": run_duckdb, "pandas": run_pandas, "sn46": run_sn46}


def run_one(name: str, root: Path) -> None:
    import duckdb  # noqa: F401  imports are not what is measured
    import pandas  # noqa: F401

    import sn46_pipelines.listings  # noqa: F401

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    outcome = CONTESTANTS[name](root)
    outcome["seconds"] = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    outcome["peak_rss_mib"] = after.ru_maxrss / 1024
    print(json.dumps(outcome))


def measure(name: str, root: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--run-one", name, "--root", str(root)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the curation part --------------------------------------------------------------------------
def curate_part(files: int, rows: int, hotkeys: int, repeat: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="sn46-ingest-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_dataset(root, files, rows, hotkeys)
        total = files * rows
        print(f"wrote {files} files, {total:,} rows, {hotkeys} hotkeys in {time.perf_counter() - start:.1f}s")
        runs: dict[str, list[dict]] = {name: [] for name in CONTESTANTS}
        for _ in range(repeat):  # interleaved, so a busy moment on a shared machine hits everyone
            for name in CONTESTANTS:
                runs[name].append(measure(name, root))
        results = {name: min(r, key=lambda run: run["seconds"]) for name, r in runs.items()}

    ours = results["sn46"]
    print(
        f"\nvalidate + curate {total:,} rows in {files:,} files: folder store, each contestant in its own "
        f"process, best of {repeat} interleaved runs"
    )
    print("(CPU s counts every thread; on a shared machine it moves less than wall time does)")
    columns = ("seconds", "rows/s", "CPU s", "peak MiB", "rows kept")
    widths = (8, 12, 7, 9, 10)
    print(f"{'contestant':<12} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths)) + "  vs sn46")
    for name, r in results.items():
        print(
            f"{name:<12} {r['seconds']:>8.2f} {total / r['seconds']:>12,.0f} {r['cpu_seconds']:>7.2f} "
            f"{r['peak_rss_mib']:>9.0f} {r['rows_kept']:>10,}  {r['seconds'] / ours['seconds']:.2f}x time"
        )
    print(
        f"CPU ratios: pandas/sn46 {results['pandas']['cpu_seconds'] / ours['cpu_seconds']:.1f}x, "
        f"sn46/duckdb-read {ours['cpu_seconds'] / results['duckdb-read']['cpu_seconds']:.1f}x"
    )
    print(f"rejections sn46:   {ours['rejected']}")
    print(f"rejections pandas: {results['pandas']['rejected']}")
    checks = {
        "sn46 >= 5x pandas rows/s": results["pandas"]["seconds"] / ours["seconds"] >= 5,
        "sn46 within 3x of the duckdb read": ours["seconds"] <= 3 * results["duckdb-read"]["seconds"],
        "sn46 peak memory < 1.5 GiB": ours["peak_rss_mib"] < 1536,
        "pandas and sn46 agree": (ours["rows_kept"], ours["rejected"])
        == (results["pandas"]["rows_kept"], results["pandas"]["rejected"]),
    }
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["curate"], default="curate")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=2000, help="rows per file")
    parser.add_argument("--hotkeys", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contestant; the fastest counts")
    parser.add_argument("--run-one", choices=list(CONTESTANTS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, args.root)
        return 0
    return 0 if curate_part(args.files, args.rows, args.hotkeys, args.repeat) else 1


if __name__ == "__main__":
    sys.exit(main())
