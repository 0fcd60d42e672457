"""The sensor benchmark's ordered moto index answers every listing exactly as stock moto does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.paths import REPO

BENCHMARKS = REPO / "benchmarks"

# Runs in its own process: the index patches moto's S3 backend class for the whole interpreter.
SCRIPT = textwrap.dedent(
    """
    import importlib.util, os, random, sys
    os.environ.update(AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    from moto.server import ThreadedMotoServer
    spec = importlib.util.spec_from_file_location("sensor_bench", sys.argv[1])
    sensor_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sensor_bench)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    s3.create_bucket(Bucket="index-check")
    rng = random.Random(1)
    keys = {f"data/hotkey=h{rng.randint(0, 5)}/job_id=j{rng.randint(0, 3)}/f{rng.randint(0, 50)}.p"
            for _ in range(300)}
    for key in keys | {"a", "data/x", "data/hotkey=h1/", "z/y/x"}:
        s3.put_object(Bucket="index-check", Key=key, Body=b"1")
    s3.delete_object(Bucket="index-check", Key="data/x")

    def pages(**kwargs):
        paginator = s3.get_paginator("list_objects_v2")
        listed = paginator.paginate(Bucket="index-check", PaginationConfig={"PageSize": 2}, **kwargs)
        return [
            ([o["Key"] for o in p.get("Contents", [])], [c["Prefix"] for c in p.get("CommonPrefixes", [])])
            for p in listed
        ]

    cases = [{}, {"Prefix": "data/"}, {"Prefix": "data/", "Delimiter": "/"}, {"Delimiter": "/"},
             {"Prefix": "data/hotkey=h1/", "Delimiter": "/"},
             {"Prefix": "data/hotkey=h1/job_id=j2/", "StartAfter": "data/hotkey=h1/job_id=j2/f2.p"},
             {"Prefix": "data/hotkey=h", "Delimiter": "/", "StartAfter": "data/hotkey=h2/job_id=j1/f9.p"},
             {"Prefix": "nope/"}]
    stock = [pages(**case) for case in cases]
    sensor_bench.index_moto_listings()
    indexed = [pages(**case) for case in cases]
    s3.put_object(Bucket="index-check", Key="data/hotkey=h9/job_id=j0/new.p", Body=b"1")  # index rebuilt
    after_write = pages(Prefix="data/hotkey=h9/")
    server.stop()
    for case, want, got in zip(cases, stock, indexed):
        assert want == got, (case, want, got)
    assert sum(len(page[0]) for page in stock[0]) == len(keys) + 3
    assert after_write == [(["data/hotkey=h9/job_id=j0/new.p"], [])]
    print("same")
    """
)


def test_ordered_index_lists_the_same_pages_as_stock_moto():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(BENCHMARKS / "sensor_bench.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "same"
