"""Price-model benchmarks: training throughput per device, and ``/predict`` throughput and latency.

    .venv/bin/python benchmarks/training_bench.py            # 208,000 demo listings, 3 epochs per setting
    .venv/bin/python benchmarks/training_bench.py --quick    # smoke run (26,000 listings, 1 epoch)
    .venv/bin/python benchmarks/training_bench.py --compare --rows 20000   # MLP against HGB and ridge

Training: samples per second of the optimization loop (data preparation and
evaluation excluded), with the model FLOP rate next to the device's limit:
on CUDA the H100 SXM bf16 dense peak (989 TFLOP/s), on CPU none is claimed.
A training step costs about 3x the forward FLOPs (forward, and a backward
twice as large).

Serving: ``sn46 serve`` in its own process (uvicorn, one worker), driven by
client threads over keep-alive HTTP; the in-process ``Predictor.predict``
time for the same batch is printed beside it as the floor HTTP adds to.

Comparison (``--compare``): is the MLP worth its complexity? On the
regional set (one metro, Austin zips within about 0.2 degrees) and the
multi-city set (one zip per demo city), each ``--rows`` listings, the
project's MLP (default :class:`TrainConfig`) is set against scikit-learn's
untuned ``HistGradientBoostingRegressor`` and a ridge regression, both on
log price and on the input matrix the MLP gets (:func:`encode` of the
training split; the ridge model sees it scaled as the network scales it:
``log1p`` where the spec says, clipped to the training range,
standardized). All three use the pipeline's own split (zpid hashes), and
every metric comes from the project's helpers on the validation rows:
:func:`price_metrics`, and :func:`with_noise`, the +-1 % multiplicative
noise the gate applies, once on all inputs but the coordinates (the gate's
rise check) and once on all of them. The MLP is scored through its ONNX
export in onnxruntime on one thread, as SN46 validators run it; its
inference time is per 1,000 rows there. Training time is the fit alone
(the MLP's optimization loop; ``fit`` for scikit-learn), every model on
one thread, as training defaults to.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES
from sn46_pipelines.demo.region import regional_listings
from sn46_pipelines.modelstore import ModelStore, set_pin
from sn46_pipelines.pricemodel.baseline import ZipMedianBaseline
from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
from sn46_pipelines.pricemodel.export import INPUT_NAME, OUTPUT_NAME, export_onnx, verify_onnx
from sn46_pipelines.pricemodel.features import (
    COORDINATES,
    FeatureSpec,
    encode,
    limit_rows,
    log_prices,
    prepare,
    validation_mask,
    zpid_hashes,
)
from sn46_pipelines.pricemodel.metrics import price_metrics, with_noise
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
    newest = datetime(2026, 11, 20, tzinfo=UTC)
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
                config = TrainConfig(
                    epochs=epochs,
                    hidden=hidden,
                    batch_size=batch,
                    device=device,
                    cpu_threads=threads,
                    learning_rate=3e-3,
                )
                result = train(table, config)
                flops = step_flops(result) * result.samples_per_second
                limit = f"{flops / H100_BF16_PEAK:.4%} of H100 bf16 peak" if device == "cuda" else "-"
                row(
                    f"train {name}, hidden {hidden}, batch {batch}"
                    + (f", {threads} threads" if threads else ""),
                    f"{result.samples_per_second:,.0f} samples/s",
                    f"{flops / 1e9:,.2f} GFLOP/s",
                    limit,
                    f"val MAPE {result.metrics['mape']:.4f} (baseline {result.baseline['mape']:.4f})",
                )
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
            [
                sys.executable,
                "-m",
                "sn46_pipelines.cli",
                "serve",
                "--store",
                models.url,
                "--pin",
                "bench",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(port)
            for size in (1, 256):
                rows = listings.select(columns).slice(0, size).to_pylist()
                floor = _median_seconds(lambda rows=rows: predictor.predict(rows), repeats=200)
                latencies, elapsed = _drive(port, {"listings": rows}, seconds, clients)
                p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
                row(
                    f"/predict batch {size}, {clients} clients",
                    f"{len(latencies) / elapsed:,.0f} requests/s "
                    f"({len(latencies) * size / elapsed:,.0f} listings/s)",
                    f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                    f"in-process predict {floor * 1e3:.3f} ms",
                    "",
                )
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


#: Rows the ONNX inference time is measured on (validation rows, repeated when there are fewer).
TIMING_ROWS = 1_000

#: A fitted model as the comparison calls it: encoded ``(rows, N)`` float32 inputs -> dollar prices.
Prices = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One model on one data set: its validation scores, and what fitting and serving it cost."""

    dataset: str
    model: str
    mape: float
    median_ape: float
    r2: float
    mape_noise: float | None
    """MAPE with +-1 % noise on every input but the coordinates (the gate's rise check); None where the
    model reads no input vector (the zip-median baseline)."""
    mape_noise_all: float | None
    """MAPE with +-1 % noise on every input, coordinates included."""
    train_seconds: float | None
    onnx_ms_per_1k: float | None


def comparison_datasets(rows: int) -> dict[str, pa.Table]:
    """The regional set and the multi-city set, about ``rows`` listings each, the same on every run."""
    newest = datetime(2026, 11, 20, tzinfo=UTC)
    return {
        "regional": regional_listings(rows, newest=newest),
        "multi-city": demo_table(max(1, rows // len(PLACES))),
    }


def split_rows(listings: pa.Table, config: TrainConfig) -> tuple[pa.Table, pa.Table]:
    """The training and validation rows :func:`train` fits and scores on, built by the same feature helpers,
    so the other models see exactly the MLP's split (:func:`compare_models` checks that they agree)."""
    table = prepare(listings)
    table, hashes = limit_rows(table, zpid_hashes(table.column("zpid").to_pylist()), config.row_limit)
    in_validation = validation_mask(hashes, config.val_percent)
    return table.filter(pa.array(~in_validation)), table.filter(pa.array(in_validation))


def network_scaling(spec: FeatureSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The input scaling :class:`PriceNet` applies in its graph (clip to the training range, ``log1p`` where
    the spec says, standardize), for a linear model: without it a ridge fit is judged on raw square feet
    and degrees, and +-1 % on a latitude moves it out of the metro instead of to its edge."""
    log, mean, std = spec.input_normalization()
    low, high = spec.input_bounds()

    def scale(x: np.ndarray) -> np.ndarray:
        clipped = np.clip(x.astype(np.float64), low, high)
        return (np.where(log, np.log1p(np.maximum(clipped, 0.0)), clipped) - mean) / std

    return scale


def compare_models(name: str, listings: pa.Table, config: TrainConfig | None = None) -> list[Comparison]:
    """The MLP, HistGradientBoostingRegressor, ridge regression and the zip-median baseline on ``listings``
    (``config``: the MLP's, :class:`TrainConfig` defaults when None).

    scikit-learn is a test and benchmark dependency only, hence the local
    imports. Fitting runs under one thread (``threadpool_limits``), as the
    MLP trains: the comparison is of models, not of thread pools.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from threadpoolctl import threadpool_limits

    config = config or TrainConfig()
    result = train(listings, config)
    train_rows, val_rows = split_rows(listings, config)
    if not val_rows.column("zpid").equals(result.validation.column("zpid")):
        raise RuntimeError("the benchmark's split disagrees with train()'s; split_rows must follow train()")
    x_train, x_val = encode(train_rows, result.spec), encode(val_rows, result.spec)
    actual = val_rows.column("price").to_numpy(zero_copy_only=False).astype(np.float64)
    scores = []
    with tempfile.TemporaryDirectory(prefix="sn46-compare-") as root:
        path = Path(root) / "model.onnx"
        export_onnx(result.net, path)
        verify_onnx(result.net, result.spec, path, rows=x_val)
        onnx_prices = _onnx_prices(path)
        timing_rows = x_val[np.arange(TIMING_ROWS) % len(x_val)]
        per_1k = _median_seconds(lambda: onnx_prices(timing_rows), repeats=50) * 1e3 * 1_000 / TIMING_ROWS
        scores.append(
            _score(
                name, "MLP (TrainConfig())", onnx_prices, x_val, actual, result.spec, result.seconds, per_1k
            )
        )
    fits = {
        "HistGradientBoosting": HistGradientBoostingRegressor(random_state=0),
        "ridge (scaled inputs)": make_pipeline(FunctionTransformer(network_scaling(result.spec)), Ridge()),
    }
    with threadpool_limits(1):
        for label, model in fits.items():
            started = time.perf_counter()
            model.fit(x_train, log_prices(train_rows))
            seconds = time.perf_counter() - started
            scores.append(
                _score(
                    name,
                    label,
                    lambda x, m=model: np.exp(m.predict(x)),
                    x_val,
                    actual,
                    result.spec,
                    seconds,
                    None,
                )
            )
    mape, median, r2 = _accuracy(actual, ZipMedianBaseline.fit(train_rows).predict(val_rows))
    scores.append(Comparison(name, "zip median (baseline)", mape, median, r2, None, None, None, None))
    return scores


def _onnx_prices(path: Path) -> Prices:
    """The exported file in onnxruntime with one intra- and one inter-op thread, as SN46 scores it."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0].astype(np.float64).reshape(-1)


def _accuracy(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """MAPE and R^2 as the gate measures them (:func:`price_metrics`), and the median APE: how the typical
    home is priced, where MAPE also carries the few priced far off."""
    metrics = price_metrics(actual, predicted)
    return metrics["mape"], float(np.median(np.abs(predicted - actual) / actual)), metrics["r2"]


def _score(
    dataset: str,
    model: str,
    prices: Prices,
    x: np.ndarray,
    actual: np.ndarray,
    spec: FeatureSpec,
    seconds: float,
    onnx_ms: float | None,
) -> Comparison:
    """Validation accuracy of ``prices``, clean and under the gate's noise (the same draw for every model)."""
    coordinates = spec.column_indices(COORDINATES)
    others = [i for i in range(x.shape[1]) if i not in coordinates]
    mape, median, r2 = _accuracy(actual, prices(x))
    noisy = price_metrics(actual, prices(with_noise(x, others)))["mape"]
    noisy_all = price_metrics(actual, prices(with_noise(x, list(range(x.shape[1])))))["mape"]
    return Comparison(dataset, model, mape, median, r2, noisy, noisy_all, seconds, onnx_ms)


#: Column headers of the comparison table, in order.
COMPARISON_HEADERS = (
    "data set",
    "model",
    "val MAPE",
    "median APE",
    "R^2",
    "MAPE +-1% noise",
    "MAPE +-1% all",
    "train s",
    "ONNX ms/1k rows",
)


def format_comparison(scores: list[Comparison]) -> str:
    """One plain-text table, columns aligned (text left, numbers right), ``-`` where nothing applies."""

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        (
            s.dataset,
            s.model,
            number(s.mape, 4),
            number(s.median_ape, 4),
            number(s.r2, 4),
            number(s.mape_noise, 4),
            number(s.mape_noise_all, 4),
            number(s.train_seconds, 2),
            number(s.onnx_ms_per_1k, 3),
        )
        for s in scores
    ]
    widths = [
        max(len(cells[i]) for cells in [COMPARISON_HEADERS, *lines]) for i in range(len(COMPARISON_HEADERS))
    ]

    def render(cells: tuple[str, ...]) -> str:
        aligned = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(COMPARISON_HEADERS), rule, *map(render, lines)])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small data, one epoch, short serving runs")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    parser.add_argument(
        "--cpu-threads",
        type=int,
        nargs="+",
        default=[1],
        help="torch CPU thread counts to train with (default: 1, the training default)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare the MLP with HistGradientBoosting, ridge regression and the zip median",
    )
    parser.add_argument(
        "--rows", type=int, default=20_000, help="listings per data set for --compare (default 20,000)"
    )
    args = parser.parse_args()
    if args.compare:
        print(
            f"--compare: about {args.rows:,} listings per data set; {os.cpu_count()} CPU cores, "
            "one thread per model",
            flush=True,
        )
        scores = []
        for name, listings in comparison_datasets(args.rows).items():
            print(f"  {name}: {listings.num_rows:,} listings", flush=True)
            scores += compare_models(name, listings)
        print(format_comparison(scores))
        return 0
    rows_per_place, epochs, seconds = (1_000, 1, 3.0) if args.quick else (8_000, 3, 10.0)
    table = demo_table(rows_per_place)
    print(
        f"{table.num_rows:,} demo listings; torch {torch.__version__}; {os.cpu_count()} CPU cores; "
        f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
        flush=True,
    )
    result = bench_training(table, epochs, args.cpu_threads)
    bench_serving(result, table, seconds, args.clients)
    print("\n| what | throughput | rate / latency | limit / floor | quality |\n|---|---|---|---|---|")
    for cells in ROWS:
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
