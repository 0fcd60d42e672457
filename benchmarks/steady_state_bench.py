"""Steady state: miners upload the same homes again every round; does the cost stay flat?

Setup: a folder store, ``--miners`` miners, each scraping one zip whose market
holds ``rows / overlap`` homes (1% of them sold and replaced by new ones each
round). Every ``--interval-hours`` each miner uploads ``--rows`` listings:
``--overlap`` of them homes it uploaded the round before (scraped again, new
price and scrape time), the rest other homes of its zip; 2% of the rows carry
an impossible price, so the quarantine has something to keep. After every
round each miner is ingested (``ingest_hotkey``) as the deployment would.

Measured at the first, middle and last round, each in its own child process
so its peak memory is its own: one miner's ingest run, and one aggregates run
over every miner (``compute_aggregates``, DuckDB capped at ``--memory-limit``).
The baseline is the same child doing nothing but the imports, measured in the
same run. Also printed: the bytes the curated area holds (what aggregates
read) and the audit area.

    .venv/bin/python benchmarks/steady_state_bench.py                          # 256 x 84, a week
    .venv/bin/python benchmarks/steady_state_bench.py --miners 32 --rounds 24  # a smaller run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

START = datetime(2026, 12, 1, tzinfo=UTC)
IMPOSSIBLE_SHARE = 0.02
CHURN = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=84)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--overlap", type=float, default=0.7)
    parser.add_argument("--interval-hours", type=float, default=2.0)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "STORE", "NOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, memory_limit=args.memory_limit)))
        return

    measured = sorted({1, max(1, args.rounds // 2), args.rounds})
    interval = timedelta(hours=args.interval_hours)
    with tempfile.TemporaryDirectory(prefix="sn46-steady-") as folder:
        root = Path(folder) / "store"
        market = Market(args.miners, args.rows, args.overlap)
        baseline = measure("baseline", root, START)
        results = []
        started = time.perf_counter()
        for number in range(1, args.rounds + 1):
            now = START + (number - 1) * interval
            market.upload_round(root, now)
            ingest_now = now + timedelta(minutes=10)
            if number in measured:  # miner 0 in a child of its own, then everyone else here
                ingest = measure(f"ingest:{market.hotkeys[0]}", root, ingest_now)
            ingest_all(root, market.hotkeys[1:] if number in measured else market.hotkeys, ingest_now)
            if number in measured:
                aggregates = measure("aggregates", root, ingest_now)
                results.append(
                    (number, ingest, aggregates, folder_bytes(root / "curated"), folder_bytes(root / "audit"))
                )
                print(
                    f"round {number} measured after {time.perf_counter() - started:,.0f} s", file=sys.stderr
                )
        print_table(args, baseline, results)


class Market:
    """Each miner's zip: the homes on the market, and the ones it uploaded last round."""

    def __init__(self, miners: int, rows: int, overlap: float) -> None:
        from sn46_pipelines.demo.identities import demo_neurons

        self.rng = np.random.default_rng(46)
        self.rows, self.overlap = rows, overlap
        self.hotkeys = [n.hotkey for n in demo_neurons(self.rng, miners, 0)]
        homes = int(rows / overlap)
        self.homes = [np.arange(i * 10**7, i * 10**7 + homes) for i in range(miners)]
        self.next_zpid = [i * 10**7 + homes for i in range(miners)]
        self.last: list[np.ndarray | None] = [None] * miners

    def upload_round(self, root: Path, now: datetime) -> None:
        from sn46_pipelines.demo.listings import synth_listings
        from sn46_pipelines.demo.places import PLACES
        from sn46_pipelines.listings.keys import upload_key

        for i, hotkey in enumerate(self.hotkeys):
            homes = self.homes[i]
            sold = self.rng.random(homes.size) < CHURN  # sold homes leave the market, new ones come
            homes[sold] = np.arange(self.next_zpid[i], self.next_zpid[i] + int(sold.sum()))
            self.next_zpid[i] += int(sold.sum())
            zpids = self.pick(i, homes)
            place = PLACES[i % len(PLACES)]
            table = synth_listings(self.rng, place, zpids, newest=now, window=timedelta(hours=1))
            bad = self.rng.random(table.num_rows) < IMPOSSIBLE_SHARE
            table = table.set_column(
                table.schema.get_field_index("price"), "price", pc.if_else(pa.array(bad), 1.0, table["price"])
            )
            job = f"zillow_premium_zip_{place.zip_code}_sold"
            path = root / upload_key(hotkey, job, now, table.num_rows)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)

    def pick(self, i: int, homes: np.ndarray) -> np.ndarray:
        """``rows`` homes: ``overlap`` of them uploaded last round (if still on the market), the rest others."""
        last = self.last[i]
        if last is None:
            chosen = self.rng.choice(homes, self.rows, replace=False)
        else:
            again = np.intersect1d(last, homes)
            again = self.rng.choice(again, min(again.size, int(self.rows * self.overlap)), replace=False)
            others = np.setdiff1d(homes, again)
            chosen = np.concatenate([again, self.rng.choice(others, self.rows - again.size, replace=False)])
        self.last[i] = chosen
        return chosen


def ingest_all(root: Path, hotkeys: list[str], now: datetime) -> None:
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.objectstore import open_store

    store = open_store(f"file://{root}")
    for hotkey in hotkeys:
        ingest_hotkey(store, hotkey, now=now)


def measure(what: str, root: Path, now: datetime) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", what, str(root), now.isoformat()]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def child(what: str, root: str, now: str, *, memory_limit: str) -> dict[str, float]:
    """One measured step, timed from after the imports; peak RSS of this process."""
    from sn46_pipelines.demo.identities import demo_neurons  # noqa: F401  (the imports the others pay)
    from sn46_pipelines.listings.aggregates import compute_aggregates
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.listings.sources import curated_sources
    from sn46_pipelines.objectstore import open_store

    moment = datetime.fromisoformat(now)
    started = time.perf_counter()
    rows = 0
    if what != "baseline":
        store = open_store(f"file://{root}")
        if what.startswith("ingest:"):
            rows = ingest_hotkey(store, what.removeprefix("ingest:"), now=moment).listings_rows
        else:
            aggregates = compute_aggregates(curated_sources(store), now=moment, memory_limit=memory_limit)
            rows = sum(aggregates["miner_scores"].column("curated_rows").to_pylist())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def print_table(args: argparse.Namespace, baseline: dict[str, float], results: list) -> None:
    print(
        f"\n{args.miners} miners x {args.rounds} rounds ({args.interval_hours:g} h apart), "
        f"{args.rows} listings per miner per round, {args.overlap:.0%} overlap; "
        f"idle child (imports only): {baseline['peak_mib']:,.0f} MiB peak\n"
    )
    print(
        "| round | ingest (1 miner) | ingest peak | aggregates | aggregates peak | curated rows | curated | audit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for number, ingest, aggregates, curated, audit in results:
        print(
            f"| {number} | {ingest['seconds']:.2f} s | {ingest['peak_mib']:,.0f} MiB "
            f"| {aggregates['seconds']:.2f} s | {aggregates['peak_mib']:,.0f} MiB | {aggregates['rows']:,} "
            f"| {curated / 2**20:,.1f} MiB | {audit / 2**20:,.1f} MiB |"
        )
    first, last = results[0], results[-1]
    print(
        f"\nlast / first round: ingest {last[1]['seconds'] / first[1]['seconds']:.2f}x, "
        f"aggregates {last[2]['seconds'] / first[2]['seconds']:.2f}x "
        f"(targets: 1.5x and 2x)"
    )


if __name__ == "__main__":
    main()
