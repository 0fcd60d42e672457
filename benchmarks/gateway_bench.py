"""Signed ``/get-folder-access`` on one uvicorn worker with Redis, against the per-request floor.

Setup, all on loopback: a throwaway ``redis-server``, moto's S3 server, a
metagraph snapshot of ``--miners`` real sr25519 hotkeys, and the gateway as
``uvicorn --factory sn46_pipelines.gateway.service:app_from_env`` with one
worker (quotas raised so the run measures work, not 429s). Every request is
a distinct, freshly signed commitment, as today's miners send them, so each
one pays the full path: body parse, timestamp, sr25519 verification,
metagraph lookup, one Redis round trip (claim + quotas), a presigned POST and
a presigned listing URL, and a second round trip storing the answer for
retries. Then half of those requests are sent again unchanged, as a client
retries: each is verified and answered from the stored answer, uncharged.

The load generator is a keep-alive HTTP/1.1 client on raw asyncio streams in
this process (closed loop, ``--concurrency`` connections), bounded by
``--requests`` and ``--max-seconds``. The floor, measured in the same run on
the same machine: one sr25519 verification + one presigned POST + one
presigned list URL with boto3, the work the issue counts as unavoidable. The
gateway signs with its own SigV4 code (byte-identical to boto3's), so its
cost for the same two presigns is printed too. On a shared machine the
requests per second depend on what else runs; the worker's CPU time per
request (psutil) is the steadier comparison with the floor.

    .venv/bin/python benchmarks/gateway_bench.py                 # 6,000 requests, 8 connections, <= 30 s
    .venv/bin/python benchmarks/gateway_bench.py --profile       # also print where the worker's time goes

Needs Debian's ``redis-server`` on the PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "gateway-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthcheck").json()["status"] == "ok":
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            sys.exit("gateway_bench: the gateway did not become healthy")
        time.sleep(0.1)


def per_call_us(fn, n: int) -> float:
    """Best of three timings of ``n`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def measure_floor(endpoint: str, miner) -> tuple[dict[str, float], dict[str, float]]:
    """Microseconds of the unavoidable per-request work, as the issue defines it (boto3's presigning),
    and of the same two presigns with the gateway's own signer (:mod:`sn46_pipelines.gateway.sigv4`)."""
    import boto3
    from bittensor.sp_core import Keypair

    from sn46_pipelines.gateway.presign import Presigner
    from sn46_pipelines.listings.layout import miner_folder

    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-2")
    presigner = Presigner(client, BUCKET, "", min_bytes=1, max_bytes=5 * 1024**3)
    message = f"s3:data:access:{miner.ss58_address}:{miner.ss58_address}:{int(time.time())}".encode()
    signature = miner.sign(message)
    hotkey = miner.ss58_address
    folder = miner_folder(hotkey)
    fields = {"x-amz-storage-class": "STANDARD"}
    conditions = [fields, ["content-length-range", 1, 5 * 1024**3]]
    floor = {
        "sr25519 verify": per_call_us(lambda: Keypair(ss58_address=hotkey).verify(message, signature), 2000),
        "boto3 presigned POST": per_call_us(
            lambda: client.generate_presigned_post(
                Bucket=BUCKET,
                Key=folder + "${filename}",
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=86400,
            ),
            500,
        ),
        "boto3 presigned list URL": per_call_us(
            lambda: client.generate_presigned_url(
                "list_objects_v2", Params={"Bucket": BUCKET, "Prefix": folder}, ExpiresIn=86400
            ),
            500,
        ),
    }
    ours = {
        "gateway presigned POST": per_call_us(lambda: presigner.upload_post(hotkey, None, 86400), 500),
        "gateway presigned list URL": per_call_us(lambda: presigner.list_url(folder, 86400), 500),
    }
    return floor, ours


def signed_request(port: int, miner, coldkey: str) -> bytes:
    """One raw HTTP request, signed exactly like today's miners sign it."""
    ts = int(time.time())
    commitment = f"s3:data:access:{coldkey}:{miner.ss58_address}:{ts}"
    body = json.dumps(
        {
            "coldkey": coldkey,
            "hotkey": miner.ss58_address,
            "timestamp": ts,
            "signature": miner.sign(commitment.encode()).hex(),
        }
    ).encode()
    head = (
        f"POST /get-folder-access HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split(" ", 2)[1])


async def load(port: int, requests: list[bytes], concurrency: int, max_seconds: float):
    """Closed loop: ``concurrency`` keep-alive connections send until the requests or the time run out."""
    queue = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + max_seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                if time.perf_counter() > stop_at:
                    return
                start = time.perf_counter()
                status = await fetch(reader, writer, request)
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - start


async def _charged(redis_port: int) -> int:
    """Today's global count in the gateway's ledger: the warm-up and the measured requests, no retry."""
    from sn46_pipelines.gateway.ledger import RedisLedger

    ledger = RedisLedger(f"redis://127.0.0.1:{redis_port}/0")
    try:
        return await ledger.total_used()
    finally:
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6000, help="measured requests (default 6000)")
    parser.add_argument("--concurrency", type=int, default=8, help="open connections (default 8)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop after this (default 30)")
    parser.add_argument("--miners", type=int, default=200, help="registered miner hotkeys (default 200)")
    parser.add_argument("--profile", action="store_true", help="profile the worker (cProfile)")
    args = parser.parse_args()

    import psutil
    from bittensor.sp_core import Keypair
    from moto.server import ThreadedMotoServer

    redis_binary = shutil.which("redis-server") or sys.exit("gateway_bench: redis-server is not installed")
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    redis_port, gateway_port = free_port(), free_port()
    redis = subprocess.Popen(
        [redis_binary, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)

    miners = [Keypair.create_from_uri(f"//bench-miner-{i}") for i in range(args.miners)]
    coldkey = Keypair.create_from_uri("//bench-cold").ss58_address
    neurons = [
        {"uid": i, "hotkey": kp.ss58_address, "coldkey": coldkey, "validator_permit": False, "stake": 0.0}
        for i, kp in enumerate(miners)
    ]
    (work / "metagraph.json").write_text(json.dumps({"netuid": 46, "block": 1, "neurons": neurons}))
    env = {
        **os.environ,
        "SN46_ENV": "local",
        "SN46_DATA_STORE": f"s3://{BUCKET}",
        "AWS_ENDPOINT_URL": endpoint,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SN46_METAGRAPH_FILE": str(work / "metagraph.json"),
        "DAILY_LIMIT_PER_MINER": str(10**9),
        "TOTAL_DAILY_LIMIT": str(10**9),
    }
    profile_path = work / "gateway.prof"
    command = [
        sys.executable,
        *(["-m", "cProfile", "-o", str(profile_path)] if args.profile else []),
        "-m",
        "uvicorn",
        "sn46_pipelines.gateway.service:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(gateway_port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    gateway = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        wait_healthy(gateway_port)
        warmup = [signed_request(gateway_port, miners[i % len(miners)], coldkey) for i in range(300)]
        warmed, _, _ = asyncio.run(load(gateway_port, warmup, args.concurrency, 30))
        requests = [
            signed_request(gateway_port, miners[i % len(miners)], coldkey) for i in range(args.requests)
        ]
        worker = psutil.Process(gateway.pid)
        cpu_before = sum(worker.cpu_times()[:2])
        latencies, statuses, elapsed = asyncio.run(
            load(gateway_port, requests, args.concurrency, args.max_seconds)
        )
        cpu_per_request_us = (sum(worker.cpu_times()[:2]) - cpu_before) / len(latencies) * 1e6
        retries = requests[: len(latencies) // 2]  # answered above; sent again byte for byte
        cpu_before = sum(worker.cpu_times()[:2])
        retry_latencies, retry_statuses, retry_elapsed = asyncio.run(
            load(gateway_port, retries, args.concurrency, args.max_seconds)
        )
        cpu_per_retry_us = (sum(worker.cpu_times()[:2]) - cpu_before) / len(retry_latencies) * 1e6
        charged = asyncio.run(_charged(redis_port))
    finally:
        gateway.send_signal(signal.SIGINT)  # uvicorn exits cleanly on SIGINT, and cProfile writes its file
        gateway.wait(timeout=30)
        redis.terminate()
        moto.stop()

    floor, ours = measure_floor(endpoint, miners[0])
    floor_us = sum(floor.values())
    rps = len(latencies) / elapsed
    p50, p99 = (statistics.quantiles(latencies, n=100)[i] * 1000 for i in (49, 98))
    print(
        f"\nSigned POST /get-folder-access, 1 uvicorn worker, Redis ledger, {args.concurrency} keep-alive "
        f"connections, loopback, {os.cpu_count()} cores shared with the load generator; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print(f"{'measure':<36}{'value':>14}")
    print("-" * 50)
    print(f"{'requests answered':<36}{len(latencies):>14,}")
    print(f"{'statuses':<36}{json.dumps(statuses):>14}")
    print(f"{'requests per second':<36}{rps:>14,.0f}")
    print(f"{'p50 latency (ms)':<36}{p50:>14.2f}")
    print(f"{'p99 latency (ms)':<36}{p99:>14.2f}")
    print(f"{'wall time per request (us)':<36}{1e6 / rps:>14,.0f}")
    print(f"{'worker CPU per request (us)':<36}{cpu_per_request_us:>14,.0f}")
    print(f"{'worker CPU-bound rate (req/s)':<36}{1e6 / cpu_per_request_us:>14,.0f}")
    print("-" * 50)
    retry_rps = len(retry_latencies) / retry_elapsed
    print(f"{'retries answered':<36}{len(retry_latencies):>14,}")
    print(f"{'retry statuses':<36}{json.dumps(retry_statuses):>14}")
    print(f"{'retries per second':<36}{retry_rps:>14,.0f}")
    print(f"{'retry p50 latency (ms)':<36}{statistics.median(retry_latencies) * 1000:>14.2f}")
    print(f"{'worker CPU per retry (us)':<36}{cpu_per_retry_us:>14,.0f}")
    print(f"{'requests charged (all phases)':<36}{charged:>14,}")
    print("-" * 50)
    for name, us in floor.items():
        print(f"{'floor: ' + name + ' (us)':<36}{us:>14,.0f}")
    print(f"{'floor: total per request (us)':<36}{floor_us:>14,.0f}")
    print(f"{'floor: requests per second':<36}{1e6 / floor_us:>14,.0f}")
    for name, us in ours.items():
        print(f"{name + ' (us)':<36}{us:>14,.0f}")
    print(f"{'measured rate / floor rate':<36}{rps * floor_us / 1e6:>14.2f}")
    print(f"{'floor CPU / worker CPU':<36}{floor_us / cpu_per_request_us:>14.2f}")
    print("-" * 50)
    checks = {
        "at least 500 requests per second": rps >= 500,
        "p99 under 50 ms": p99 < 50,
        "at least half the floor's rate (wall clock)": rps >= 0.5 * 1e6 / floor_us,
        "worker CPU per request within twice the floor": cpu_per_request_us <= 2 * floor_us,
        "every answer a 200": set(statuses) == {200} and set(retry_statuses) == {200},
        "retries charged nothing": charged == len(warmed) + len(latencies),
        "a retry costs no more than a new request (worker CPU)": cpu_per_retry_us <= cpu_per_request_us,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.profile:
        stats = pstats.Stats(str(profile_path))
        print("\nWhere the worker's time goes: cProfile, cumulative, the gateway's steps and the libraries")
        steps = r"gateway/(app|auth|ledger|presign|sigv4)\.py|redis/asyncio/client\.py|routing\.py.*handle"
        stats.sort_stats("cumulative").print_stats(steps, 30)
        print("Top functions by own time:")
        stats.sort_stats("tottime").print_stats(20)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
