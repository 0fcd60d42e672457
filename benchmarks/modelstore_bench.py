"""Model-store benchmarks: each number is printed next to a baseline measured in the same run.

    .venv/bin/python benchmarks/modelstore_bench.py            # the issue's sizes (1 GiB, 10,000 versions)
    .venv/bin/python benchmarks/modelstore_bench.py --quick    # smoke run (64 MiB, 1,000 versions)

S3 numbers run against moto's server in a separate process on loopback (so its
memory and CPU are not counted as ours); file:// numbers use a temp folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil

from sn46_pipelines.modelstore import ModelStore, build_record, segments, verify
from sn46_pipelines.modelstore.layout import record_key

ROWS: list[tuple[str, str, str, str]] = []


def row(name: str, value: str, baseline: str, verdict: str) -> None:
    ROWS.append((name, value, baseline, verdict))
    print(f"  {name}: {value} | {baseline} | {verdict}", flush=True)


@contextmanager
def moto_server():
    """A moto S3 server in its own process; yields its endpoint URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        # moto checks a conditional PUT and stores the object with no lock in between, so racing
        # writers could both win; real S3 is atomic, so serialise PUTs as the tests do.
        "import threading, time\nfrom moto.s3.responses import S3Response\n"
        "_put, _lock = S3Response.put_object, threading.Lock()\n"
        "def put_object(self):\n    with _lock:\n        return _put(self)\n"
        "S3Response.put_object = put_object\n"
        "from moto.server import ThreadedMotoServer\n"
        f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False)\n"
        "s.start()\nprint('ready', flush=True)\ntime.sleep(10**9)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        proc.stdout.readline()
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
        )
        yield endpoint
    finally:
        proc.kill()
        proc.wait()


def new_bucket(endpoint: str, name: str) -> str:
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


class PeakRSS:
    """Samples this process's RSS every 5 ms; ``growth`` is the peak above the starting value."""

    def __enter__(self) -> PeakRSS:
        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for offset in range(0, size, 8 << 20):
            f.write(os.urandom(min(8 << 20, size - offset)))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sha256_speed(size: int, rounds: int = 3) -> float:
    """Single-core ``hashlib.sha256`` over ``size`` random bytes in memory, bytes/s (best of ``rounds``).

    The block lives only in this call, so its memory is free again before what is measured next.
    """
    block = os.urandom(size)
    return size / min(timed(lambda: hashlib.sha256(block).digest()) for _ in range(rounds))


def best_of(rounds: int, baseline, candidate, cleanup=lambda: None) -> tuple[float, float, float]:
    """Alternate baseline and candidate runs (the machine is shared); best time of each and peak RSS growth.

    ``cleanup`` runs untimed after each candidate run.
    """
    base_times, cand_times, growth = [], [], 0.0
    for _ in range(rounds):
        base_times.append(timed(baseline))
        with PeakRSS() as rss:
            cand_times.append(timed(candidate))
        growth = max(growth, rss.growth_mib)
        cleanup()
    return min(base_times), min(cand_times), growth


def bench_commit(work: Path, endpoint: str, size: int, rounds: int) -> None:
    print(f"commit of a {size / 2**30:.2f} GiB checkpoint, best of {rounds}", flush=True)
    source = work / "model.pt"
    make_file(source, size)
    gib = size / 2**30

    # file://: baseline is a plain file copy of the same bytes onto the same disk. Both outputs stay
    # until the round ends (untimed cleanup), so neither side gets its dirty pages dropped for free.
    def copy_file() -> None:
        shutil.copyfile(source, work / "copy.bin")

    def commit_file() -> None:
        (work / "file-store").mkdir()
        ModelStore.open(f"file://{work}/file-store").commit(source, message="bench")

    def remove_outputs() -> None:
        (work / "copy.bin").unlink()
        shutil.rmtree(work / "file-store")

    baseline, took, growth = best_of(rounds, copy_file, commit_file, remove_outputs)

    # A commit returns once its blobs are on disk (fsynced), as an S3 PUT does; for reference, the
    # plain copy made as durable.
    def durable_copy() -> None:
        copy_file()
        with open(work / "copy.bin", "rb") as copied:
            os.fsync(copied.fileno())

    durable_times = []
    for _ in range(rounds):
        durable_times.append(timed(durable_copy))
        (work / "copy.bin").unlink()
    durable = min(durable_times)
    row(
        "commit 1 checkpoint, file://",
        f"{gib / took:.2f} GiB/s, peak RSS +{growth:.0f} MiB",
        f"file copy {gib / baseline:.2f} GiB/s (copy + fsync {gib / durable:.2f} GiB/s)",
        f"{baseline / took:.0%} of baseline (target 80%); {durable / took:.0%} of copy + fsync",
    )

    # Deep verify hashing speed vs single-core hashlib over the same number of bytes in memory.
    commit_file()
    store = ModelStore.open(f"file://{work}/file-store")
    hash_speed = sha256_speed(256 << 20)
    deep_speed = max(size / timed(lambda: verify(store, deep=True)) for _ in range(rounds))
    row(
        "deep verify, file://",
        f"{deep_speed / 2**20:.0f} MiB/s hashed",
        f"hashlib.sha256 {hash_speed / 2**20:.0f} MiB/s",
        f"{deep_speed / hash_speed:.0%} (target 70%)",
    )
    shutil.rmtree(work / "file-store")

    # s3://: baseline is boto3 upload_file of the same bytes with the store's transfer settings, on a
    # client configured as the store's is: checksums only where S3 requires them (boto3's default CRC
    # trailers break older MinIO and other S3-compatible servers). moto happens to take a plain body
    # more slowly than an aws-chunked one, so boto3's default client is timed too, for reference.
    import boto3
    from boto3.s3.transfer import TransferConfig

    bucket = new_bucket(endpoint, "bench-commit")
    config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=8)
    store = ModelStore.open(f"s3://{bucket}/models")

    def upload_with(client) -> Callable[[], None]:
        def upload() -> None:
            client.upload_file(str(source), bucket, "baseline/model.pt", Config=config)
            client.delete_object(Bucket=bucket, Key="baseline/model.pt")

        return upload

    def delete_blobs() -> None:  # so the next commit uploads again, and moto's memory stays flat
        store.objects.delete_many(i.key for i in store.objects.list("blobs/"))

    same_settings = upload_with(store.objects.client)
    baseline, took, growth = best_of(
        rounds, same_settings, lambda: store.commit(source, message="bench"), delete_blobs
    )
    default_client = min(timed(upload_with(boto3.client("s3", endpoint_url=endpoint))) for _ in range(rounds))
    row(
        "commit 1 checkpoint, s3 (moto)",
        f"{gib / took * 1024:.0f} MiB/s, peak RSS +{growth:.0f} MiB",
        f"boto3 upload_file {gib / baseline * 1024:.0f} MiB/s "
        f"(default client {gib / default_client * 1024:.0f})",
        f"{baseline / took:.0%} of baseline (target 80%)",
    )
    source.unlink()


def build_chain(store: ModelStore, n: int) -> None:
    """Write ``n`` records directly (the library's own record builder), in parallel, then seal the
    complete segments as the commits that completed them would have."""
    parent = None
    records = []
    for counter in range(n):
        parent = build_record(counter, parent, {}, message=f"bench {counter}")
        records.append(parent)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda r: store.objects.put_if_absent(record_key(r.counter), r.to_bytes()), records))
    store.advance_hint(records[-1])
    for first in segments.full_segments(n - 1):
        segments.seal_segment(store, first)


def bench_long_chain(endpoint: str, n: int) -> None:
    print(f"{n:,}-version chain on s3 (moto)", flush=True)
    store = ModelStore.open(f"s3://{new_bucket(endpoint, 'bench-chain')}/models")
    start = time.perf_counter()
    build_chain(store, n)
    print(f"  (built in {time.perf_counter() - start:.1f} s)", flush=True)
    requests = store.objects.requests
    requests.reset()
    start = time.perf_counter()
    head = store.head()
    took = time.perf_counter() - start
    row(
        f"head lookup, {n:,} versions",
        f"{requests.total} requests, {took * 1000:.1f} ms",
        "target <= 5 requests",
        "ok" if head.counter == n - 1 and requests.total <= 5 else "FAIL",
    )
    store.objects.delete("HEAD")
    requests.reset()
    assert store.head_counter() == n - 1
    row(f"head lookup, {n:,} versions, hint lost", f"{requests.total} requests", "O(log n) probes", "ok")
    store.advance_hint(store.get(n - 1))
    for label in ("segments sealed by commits", "no segments: reads every record"):
        if label.startswith("no"):
            store.objects.delete_many(i.key for i in store.objects.list("segments/"))
        requests.reset()
        start = time.perf_counter()
        report = verify(store)
        took = time.perf_counter() - start
        row(
            f"shallow verify, {n:,} versions ({label})",
            f"{took:.1f} s, {requests.total:,} requests ({requests.total / n:.3f}/version)",
            "target < 20 s, O(n) requests",
            "ok" if report.valid and took < 20 else "over 20 s",
        )


def bench_committers(work: Path, url: str, writers: int, commits: int) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom sn46_pipelines.modelstore import ModelStore\n"
        "store = ModelStore.open(sys.argv[1]); folder = Path(sys.argv[2]); folder.mkdir()\n"
        "for i in range(int(sys.argv[3])):\n"
        "    (folder / 'model.pt').write_bytes(f'{folder.name}-{i}'.encode() * 4096)\n"
        "    store.commit(folder, metadata={'writer': folder.name, 'i': i}, retries=1000)\n"
    )
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(work / f"w{w}-{time.time_ns()}"), str(commits)]
        )
        for w in range(writers)
    ]
    codes = [p.wait() for p in procs]
    took = time.perf_counter() - start
    store = ModelStore.open(url)
    versions = store.list_versions()
    seen = {(r.metadata["writer"], r.metadata["i"]) for r in versions}
    lost = writers * commits - len(seen)
    valid = verify(store, deep=True).valid
    row(
        f"{writers} concurrent committers, {url.split(':')[0]}",
        f"{len(versions) / took:.1f} commits/s ({len(versions)} in {took:.1f} s incl. interpreter start)",
        f"{writers * commits} expected",
        "ok" if lost == 0 and valid and codes == [0] * writers else f"FAIL lost={lost}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    size = (64 << 20) if args.quick else (1 << 30)
    versions = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory(prefix="sn46-bench-") as tmp, moto_server() as endpoint:
        work = Path(tmp)
        bench_commit(work, endpoint, size, rounds=2 if args.quick else 3)
        bench_long_chain(endpoint, versions)
        (work / "c").mkdir()
        bench_committers(work, f"file://{work}/c", 8, 5 if args.quick else 10)
        bench_committers(
            work, f"s3://{new_bucket(endpoint, 'bench-writers')}/models", 8, 5 if args.quick else 10
        )
    width = [
        max(len(r[i]) for r in [*ROWS, ("benchmark", "result", "baseline", "verdict")]) for i in range(4)
    ]
    print()
    for r in [("benchmark", "result", "baseline", "verdict"), tuple("-" * w for w in width), *ROWS]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, width)))


if __name__ == "__main__":
    main()
