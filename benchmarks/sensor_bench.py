"""Upload-sensor tick cost on S3 (moto over HTTP), in listing mode and in event mode.

Setup: 256 hotkeys x 3 job folders holding N existing uploads (already
processed), then 500 new files spread over the folders. Measured: one scan
(the sensor's tick body) over HTTP: wall time and S3 requests. Then the
existing objects double and the same is measured again: the request count
must not move. The baseline, in the same run, is the naive tick that lists
the whole upload prefix (what `dagster_aws`'s `get_objects` does every tick).

    .venv/bin/python benchmarks/sensor_bench.py            # both modes; 100,000 then 200,000 objects
    .venv/bin/python benchmarks/sensor_bench.py --mode events
    .venv/bin/python benchmarks/sensor_bench.py --objects 20000 --hotkeys 64
    .venv/bin/python benchmarks/sensor_bench.py --mode listing --ordered-index

Stock moto answers every ListObjectsV2 by scanning all keys of the bucket
(0.12 s a request at 100,000 keys), so on it the tick's time is moto's.
``--ordered-index`` gives moto's listing a sorted key index, the way S3 and
MinIO seek to a prefix, so what is left is the sensor's own cost: the same
requests over the same HTTP server, answered in O(log n + page).
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--hotkeys", type=int, default=256)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--new", type=int, default=500)
    parser.add_argument("--mode", choices=("listing", "events", "both"), default="both")
    parser.add_argument(
        "--ordered-index",
        action="store_true",
        help="list from a sorted key index in moto, as S3 does, instead of scanning the bucket",
    )
    args = parser.parse_args()
    if args.ordered_index:
        index_moto_listings()
    if args.mode in ("listing", "both"):
        listing_mode(args)
    if args.mode in ("events", "both"):
        event_mode(args)


def index_moto_listings() -> None:
    """Answer moto's S3 listings from a sorted key index per bucket, rebuilt after writes.

    Same results as moto's own ``list_objects_v2`` (latest versions, delete
    markers skipped, common prefixes folded at the delimiter, in key order,
    pages after ``StartAfter`` or the continuation token); only the cost
    changes, from every key in the bucket to the page asked for.
    """
    import bisect

    from moto.s3.models import FakeDeleteMarker, S3Backend

    indexes: dict[str, tuple[int, list[str]]] = {}
    generation = [0]

    def bump(method):
        def write(self, *args, **kwargs):
            generation[0] += 1
            return method(self, *args, **kwargs)

        return write

    for name in ("put_object", "delete_object", "delete_objects", "copy_object"):
        setattr(S3Backend, name, bump(getattr(S3Backend, name)))

    def sorted_names(bucket) -> list[str]:
        cached = indexes.get(bucket.name)
        if cached is None or cached[0] != generation[0]:
            cached = indexes[bucket.name] = (generation[0], sorted(bucket.keys.keys()))
        return cached[1]

    def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):
        names = sorted_names(bucket)
        prefix = prefix or ""
        after = (self._pagination_tokens.get(continuation_token) if continuation_token else start_after) or ""
        i = max(bisect.bisect_left(names, prefix), bisect.bisect_right(names, after))
        end = bisect.bisect_left(names, _successor(prefix)) if prefix else len(names)
        page = []  # one more than asked for, so _truncate_result knows whether to say truncated
        while i < end and len(page) <= max_keys:
            rest = names[i][len(prefix) :]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter)[0] + delimiter
                if folder > after:
                    page.append(folder)
                i = bisect.bisect_left(names, _successor(folder), i)  # skip the folder's keys
                continue
            key = bucket.keys[names[i]]
            if not isinstance(key, FakeDeleteMarker):
                page.append(key)
            i += 1
        return self._truncate_result(page, max_keys)

    S3Backend.list_objects_v2 = list_objects_v2


def _successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class ReadKeys:
    """A hotkey's manifest as far as the scan asks it: the keys already ingested."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def has_read(self, upload) -> bool:
        return upload.key in self.keys


def listing_mode(args: argparse.Namespace) -> None:

    from bittensor.sp_core import Keypair
    from moto.backends import get_backend
    from moto.server import ThreadedMotoServer

    from sn46_pipelines.listings.discovery import ScanCursor, scan_uploads
    from sn46_pipelines.objectstore import open_store

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    store = open_store("s3://sensor-bench", endpoint_url=f"http://{host}:{port}")
    store.client.create_bucket(Bucket="sensor-bench")
    backend = get_backend("s3")["123456789012"]["global"]

    hotkeys = [Keypair.create_from_uri(f"//bench-{i}").ss58_address for i in range(args.hotkeys)]
    folders = [
        f"data/hotkey={hk}/job_id=zillow_premium_zip_{10000 + j}_sold/"
        for hk in hotkeys
        for j in range(args.jobs)
    ]
    rng = random.Random(46)
    processed: dict[str, ReadKeys] = {hk: ReadKeys() for hk in hotkeys}
    clock = iter(range(10**9))

    def add(count: int, day: str, rng: random.Random = rng) -> list[str]:
        """Write objects straight into moto's backend (setup only; the scan goes over HTTP)."""
        keys = []
        for _ in range(count):
            folder = rng.choice(folders)
            key = f"{folder}data_{day}_{next(clock):06d}_100.parquet"
            backend.put_object("sensor-bench", key, b"x")
            keys.append(key)
        return keys

    def last_keys(backend) -> dict[str, str]:
        last: dict[str, str] = {}
        for key in backend.buckets["sensor-bench"].keys:
            folder, _, name = key.removeprefix("data/").rpartition("/")
            last[folder] = max(last.get(folder, ""), name)
        return last

    def mark(keys: list[str]) -> None:
        for key in keys:
            processed[key.split("/")[1].removeprefix("hotkey=")].keys.add(key)

    rows = []
    existing = 0
    for target in (args.objects, args.objects * 2):
        mark(add(target - existing, "20261101"))
        existing = target
        # The cursor a running sensor would have: the last key of every folder, all processed.
        cursor = ScanCursor(folders=last_keys(backend))
        new = add(args.new, "20261122", random.Random(500))  # same folders in both rounds
        store.requests.reset()
        start = time.perf_counter()
        scan = scan_uploads(store, cursor, lambda hk: processed[hk], max_hotkeys=len(hotkeys))
        elapsed = time.perf_counter() - start
        found = sum(len(files) for files in scan.new_files.values())
        assert found == len(new), (found, len(new))
        store.requests.reset()
        start = time.perf_counter()
        naive = sum(1 for _ in store.list("data/"))
        naive_elapsed = time.perf_counter() - start
        rows.append((target, found, scan.requests, elapsed, store.requests.total, naive_elapsed, naive))
        mark(new)
        existing += len(new)

    budget = args.hotkeys + len(folders) + 50
    server_kind = "moto with an ordered key index" if args.ordered_index else "moto"
    print(
        f"\nsensor tick, listing mode, S3 via {server_kind}: {args.hotkeys} hotkeys x {args.jobs} jobs, "
        f"{args.new} new files"
    )
    print(f"{'existing':>9} {'found':>6} {'requests':>9} {'tick s':>8} | {'naive req':>9} {'naive s':>8}")
    for target, found, requests, elapsed, naive_requests, naive_elapsed, _ in rows:
        print(
            f"{target:>9,} {found:>6} {requests:>9} {elapsed:>8.2f} | "
            f"{naive_requests:>9} {naive_elapsed:>8.2f}"
        )
    print(
        f"request budget (hotkeys + job folders + 50): {budget}; "
        f"requests unchanged when objects double: {rows[0][2] == rows[1][2]}"
    )
    server.stop()


def event_mode(args: argparse.Namespace) -> None:
    """500 uploads through real S3 notifications into SQS, read the way a tick reads them."""
    import boto3
    from bittensor.sp_core import Keypair
    from moto.server import ThreadedMotoServer

    from sn46_pipelines.listings.events import UploadEventQueue
    from sn46_pipelines.objectstore import open_store

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    store = open_store("s3://sensor-events", endpoint_url=endpoint)
    store.client.create_bucket(Bucket="sensor-events")
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    queue_url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    store.client.put_bucket_notification_configuration(
        Bucket="sensor-events",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)  # moto's s3:TestEvent
    sqs.purge_queue(QueueUrl=queue_url)
    hotkeys = [Keypair.create_from_uri(f"//bench-{i}").ss58_address for i in range(args.hotkeys)]
    rng = random.Random(7)
    for i in range(args.new):
        hk = rng.choice(hotkeys)
        store.put(
            f"data/hotkey={hk}/job_id=zillow_premium_zip_10001_sold/data_20261122_{i:06d}_100.parquet", b"x"
        )
    queue = UploadEventQueue(queue_url, client=sqs)
    start = time.perf_counter()
    events = queue.receive(args.new)
    queue.acknowledge(events)
    elapsed = time.perf_counter() - start
    found = sum(len(files) for files in events.new_files.values())
    print(f"\nsensor tick, event mode, S3 notifications -> SQS via moto: {args.new} new files")
    print(f"{'found':>6} {'hotkeys':>8} {'SQS requests':>13} {'tick s':>8}")
    print(f"{found:>6} {len(events.new_files):>8} {events.requests:>13} {elapsed:>8.2f}")
    print(f"request budget: 100; within budget: {events.requests <= 100}")
    server.stop()


if __name__ == "__main__":
    main()
