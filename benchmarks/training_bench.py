"""Price-model benchmarks: training throughput per device, and ``/predict`` throughput and latency.

    .venv/bin/python benchmarks/training_bench.py            # 208,000 demo listings, 3 epochs per setting
    .venv/bin/python benchmarks/training_bench.py --quick    # smoke run (26,000 listings, 1 epoch)

Training: samples per second of the optimization loop (data preparation and
evaluation excluded), with the model FLOP rate next to the device's limit:
on CUDA the H100 SXM bf16 dense peak (989 TFLOP/s), on CPU none is claimed.
A training step costs about 3x the forward FLOPs (forward, and a backward
twice as large).

Serving: ``sn46 serve`` in its own process (uvicorn, one worker), driven by
client threads over keep-alive HTTP; the in-process ``Predictor.predict``
time for the same batch is printed beside it as the floor HTTP adds to.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES
from sn46_pipelines.modelstore import ModelStore, set_pin
from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
from sn46_pipelines.pricemodel.predictor import Predictor
from sn46_pipelines.pricemodel.train import TrainConfig, TrainResult, train

#: NVIDIA H100 SXM, dense bf16 tensor-core peak (the issue's limit for GPU numbers).
H100_BF16_PEAK = 989e12

ROWS: list[tuple[str, ...]] = []


def row(*cells: str) -> None:
    ROWS.append(cells)
    print("  " + " | ".join(cells), flush=True)


def demo_table(rows_per_place: int) -> pa.Table:
    rng = np.random.default_rng(0)
    newest = datetime(2026, 11, 20, tzinfo=timezone.utc)
    return pa.concat_tables(
        synth_listings(rng, place, np.arange(rows_per_place) + 1 + i * 10_000_000, newest=newest)
        for i, place in enumerate(PLACES)
    )


def step_flops(result: TrainResult) -> float:
    """FLOPs of one training sample: 3 x (2 x multiply-adds of the three linear layers)."""
    n, h = result.spec.n_inputs, result.net.hidden
    return 3 * 2 * (n * h + h * h + h)


def bench_training(table: pa.Table, epochs: int, cpu_threads: list[int]) -> TrainResult:
    """Train with each setting on each device; return the first (default-sized) model for serving."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    settings = [(64, 256), (256, 4096)]
    results = []
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
        thread_counts = cpu_threads if device == "cpu" else [0]
        for hidden, batch in settings:
            for threads in thread_counts:
                config = TrainConfig(epochs=epochs, hidden=hidden, batch_size=batch, device=device,
                                     cpu_threads=threads, learning_rate=3e-3)
                result = train(table, config)
                flops = step_flops(result) * result.samples_per_second
                limit = f"{flops / H100_BF16_PEAK:.4%} of H100 bf16 peak" if device == "cuda" else "-"
                row(f"train {name}, hidden {hidden}, batch {batch}" + (f", {threads} threads" if threads else ""),
                    f"{result.samples_per_second:,.0f} samples/s", f"{flops / 1e9:,.2f} GFLOP/s", limit,
                    f"val MAPE {result.metrics['mape']:.4f} (baseline {result.baseline['mape']:.4f})")
                results.append(result)
    return results[0]


def bench_serving(result: TrainResult, listings: pa.Table, seconds: float, clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sn46-serve-bench-") as root:
        models = ModelStore.open(f"file://{root}/models")
        record = commit_checkpoint(models, result, Path(root) / "ckpt")
        set_pin(models, "bench", record.counter)
        predictor = Predictor.load(Path(root) / "ckpt")
        torch.set_num_threads(1)  # as `sn46 serve` runs (--threads 1), so the in-process floor compares
        columns = ["living_area", "bedrooms", "bathrooms", "latitude", "longitude", "home_type", "zip_code"]
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "sn46_pipelines.cli", "serve", "--store", models.url, "--pin", "bench", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(port)
            for size in (1, 256):
                rows = listings.select(columns).slice(0, size).to_pylist()
                floor = _median_seconds(lambda: predictor.predict(rows), repeats=200)
                latencies, elapsed = _drive(port, {"listings": rows}, seconds, clients)
                p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
                row(f"/predict batch {size}, {clients} clients", f"{len(latencies) / elapsed:,.0f} requests/s "
                    f"({len(latencies) * size / elapsed:,.0f} listings/s)", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                    f"in-process predict {floor * 1e3:.3f} ms", "")
        finally:
            server.terminate()
            server.wait(timeout=10)


def _drive(port: int, body: dict, seconds: float, clients: int) -> tuple[np.ndarray, float]:
    import httpx

    latencies: list[float] = []
    stop = threading.Event()

    def client() -> None:
        mine = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            http.post("/predict", json=body).raise_for_status()  # warm the connection
            while not stop.is_set():
                started = time.perf_counter()
                http.post("/predict", json=body).raise_for_status()
                mine.append(time.perf_counter() - started)
        latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return np.array(latencies), time.perf_counter() - started


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(port: int) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("sn46 serve did not come up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, one epoch, short serving runs")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    parser.add_argument("--cpu-threads", type=int, nargs="+", default=[1],
                        help="torch CPU thread counts to train with (default: 1, the training default)")
    args = parser.parse_args()
    rows_per_place, epochs, seconds = (1_000, 1, 3.0) if args.quick else (8_000, 3, 10.0)
    table = demo_table(rows_per_place)
    print(f"{table.num_rows:,} demo listings; torch {torch.__version__}; {os.cpu_count()} CPU cores; "
          f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}", flush=True)
    result = bench_training(table, epochs, args.cpu_threads)
    bench_serving(result, table, seconds, args.clients)
    print("\n| what | throughput | rate / latency | limit / floor | quality |\n|---|---|---|---|---|")
    for cells in ROWS:
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
