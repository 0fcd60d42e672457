"""Event mode: S3 notifications delivered by moto's server to its SQS, read by the sensor."""

from __future__ import annotations

import json
import uuid

import boto3
import dagster as dg
import pytest
from bittensor.sp_core import Keypair

from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.listings.events import UploadEventQueue
from sn46_pipelines.objectstore import open_store

miner_upload_sensor = upload_sensor(AutomationSettings())

HOTKEYS = [Keypair.create_from_uri(f"//events-{i}").ss58_address for i in range(2)]


@pytest.fixture
def notified(s3_bucket, moto_endpoint):
    """A bucket whose object-created notifications go to a fresh SQS queue."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3", endpoint_url=moto_endpoint).put_bucket_notification_configuration(
        Bucket=s3_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return open_store(f"s3://{s3_bucket}"), queue_url, sqs


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def upload(store, hotkey, job="zillow_premium_zip_10001_sold", stamp="20261120_101500"):
    key = f"data/hotkey={hotkey}/job_id={job}/data_{stamp}_10.parquet"
    store.put(key, b"bytes")
    return key


def tick(instance, store, queue_url, cursor=None):
    resource = DataStoreResource(url=store.url, events_queue=queue_url)
    context = dg.build_sensor_context(instance=instance, resources={"data_store": resource}, cursor=cursor)
    return miner_upload_sensor(context)


def test_uploads_become_one_run_per_hotkey(notified, instance):
    store, queue_url, sqs = notified
    upload(store, HOTKEYS[0])
    upload(store, HOTKEYS[0], stamp="20261120_101600")
    upload(store, HOTKEYS[1])
    store.put("data/hotkey=not-a-key/job_id=x/data_20261120_101500_10.parquet", b"x")
    store.put("metagraph.json", b"{}")
    result = tick(instance, store, queue_url)
    assert sorted(r.partition_key for r in result.run_requests) == sorted(HOTKEYS)
    assert set(result.dynamic_partitions_requests[0].partition_keys) == set(HOTKEYS)
    # The next tick acknowledges what the first one turned into runs: the queue is empty then.
    assert tick(instance, store, queue_url, cursor=result.cursor).run_requests == []
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    ) == ("0", "0")


def test_duplicate_and_redelivered_messages_give_the_same_run_key(notified, instance):
    store, queue_url, sqs = notified
    upload(store, HOTKEYS[0])
    queue = UploadEventQueue(queue_url, client=sqs)
    peek = queue.receive(visibility_timeout=0)  # read but not acknowledged: redelivered
    assert sum(len(f) for f in peek.new_files.values()) == 1
    bodies = [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
    ]
    first = tick(instance, store, queue_url)
    for body in bodies:  # the same notification delivered once more
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    second = tick(instance, store, queue_url)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]


def test_a_message_for_a_deleted_key_and_garbage_do_not_break_the_tick(notified, instance):
    store, queue_url, sqs = notified
    gone = upload(store, HOTKEYS[1])
    store.delete(gone)
    sqs.send_message(QueueUrl=queue_url, MessageBody="this is not an S3 notification")
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete"}]})
    )
    queue = UploadEventQueue(queue_url, client=sqs)
    events = queue.receive()
    assert events.malformed == 1
    assert events.new_files == {HOTKEYS[1]: {gone: events.new_files[HOTKEYS[1]][gone]}}
    queue.acknowledge(events)
    assert queue.receive().receipts == []


def test_reading_the_queue_costs_batches_of_ten(notified):
    store, queue_url, sqs = notified
    for i in range(25):
        upload(store, HOTKEYS[i % 2], stamp=f"20261120_10{i:04d}")
    queue = UploadEventQueue(queue_url, client=sqs)
    events = queue.receive()
    queue.acknowledge(events)
    # moto also queues one s3:TestEvent when the notification is configured
    assert sum(len(f) for f in events.new_files.values()) == 25
    assert events.requests == 2 * -(-len(events.receipts) // 10)


def test_queue_outage_is_a_skipped_tick(instance, moto_endpoint, s3_bucket):
    result = tick(instance, open_store(f"s3://{s3_bucket}"), f"{moto_endpoint}/123456789012/no-such-queue")
    assert result.skip_reason.skip_message.startswith("upload event queue unavailable")


def _queue_depth(sqs, queue_url) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _s3_record(bucket: str, key: str, etag: str = "e1") -> dict:
    return {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": etag}},
    }


def test_sns_and_eventbridge_wrapped_notifications_are_read(notified, instance):
    store, queue_url, sqs = notified
    bucket = store.bucket
    first, second = (f"data/hotkey={hk}/job_id=j/data_20261120_101500_10.parquet" for hk in HOTKEYS)
    sns = {"Type": "Notification", "Message": json.dumps({"Records": [_s3_record(bucket, first)]})}
    eventbridge = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": second, "etag": "e2"}},
    }
    removed = {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}
    other_bucket = {"Records": [_s3_record("someone-elses-bucket", first)]}
    for body in (sns, eventbridge, removed, other_bucket):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    events = UploadEventQueue(queue_url, bucket=bucket, client=sqs).receive()
    assert events.new_files == {HOTKEYS[0]: {first: "e1"}, HOTKEYS[1]: {second: "e2"}}
    assert (events.ignored, events.malformed) == (3, 0)  # the deletion, the other bucket, moto's TestEvent


def test_a_store_under_a_key_prefix_reads_its_own_uploads(notified, instance):
    store, queue_url, _ = notified
    prefixed = open_store(f"{store.url}/tenant-a")
    upload(prefixed, HOTKEYS[0])
    upload(store, HOTKEYS[1])  # outside the prefix: another store's upload
    result = tick(instance, prefixed, queue_url)
    (request,) = result.run_requests
    assert request.partition_key == HOTKEYS[0]


CRASH_AFTER_RECEIVE = """
import os, signal, sys
import dagster as dg
from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.listings.events import UploadEventQueue

received = UploadEventQueue.receive
def receive_then_die(self, *args, **kwargs):
    received(self, *args, **kwargs)
    print("received", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the daemon dies before it stores the tick's run requests
UploadEventQueue.receive = receive_then_die
resources = {"data_store": DataStoreResource(url=sys.argv[1], events_queue=sys.argv[2])}
with dg.instance_for_test() as instance:
    upload_sensor(AutomationSettings())(dg.build_sensor_context(instance=instance, resources=resources))
"""


def test_a_daemon_killed_between_receive_and_run_creation_loses_no_upload_and_ingests_none_twice(
    s3_bucket, moto_endpoint, instance
):
    import subprocess
    import sys
    import time

    from sn46_pipelines.demo.seed import seed_demo
    from sn46_pipelines.listings.ingest import ingest_hotkey, read_manifest

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(
        QueueName=f"uploads-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "1"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3", endpoint_url=moto_endpoint).put_bucket_notification_configuration(
        Bucket=s3_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    store = open_store(f"s3://{s3_bucket}")
    seed_demo(store, miners=2, validators=0, seed=3)
    uploads = {o.key for o in store.list("data/") if o.key.endswith((".parquet", ".json"))}

    child = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_RECEIVE, store.url, queue_url],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9 and "received" in child.stdout, child.stderr

    # Nothing was deleted: once the visibility timeout ends, every notification is back.
    deadline = time.monotonic() + 30
    while _queue_depth(sqs, queue_url)[1] and time.monotonic() < deadline:
        time.sleep(0.2)
    first = tick(instance, store, queue_url)
    requested = {h: int(r.tags["sn46/new_files"]) for r in first.run_requests for h in [r.partition_key]}
    assert sum(requested.values()) == len(uploads)

    # The runs ingest everything; then the daemon dies again before the next tick deletes the messages.
    for hotkey in requested:
        ingest_hotkey(store, hotkey)
    assert set().union(*(read_manifest(store, hk).processed for hk in requested)) == uploads
    while _queue_depth(sqs, queue_url)[1] and time.monotonic() < deadline + 30:
        time.sleep(0.2)
    # Redelivered notifications of files already ingested request no run (a fresh cursor: the last
    # one was lost too; its reconcile finds nothing new either).
    again = tick(instance, store, queue_url)
    assert again.run_requests == []
    # A tick with the recorded cursor deletes what it read: the queue drains.
    tick(instance, store, queue_url, cursor=again.cursor)
    assert _queue_depth(sqs, queue_url) == (0, 0)


def test_an_upload_whose_notification_never_came_is_found_by_the_reconcile(notified, instance):
    store, queue_url, sqs = notified
    key = upload(store, HOTKEYS[0])
    sqs.purge_queue(QueueUrl=queue_url)  # the notification is lost
    result = tick(instance, store, queue_url)
    (request,) = result.run_requests
    assert request.partition_key == HOTKEYS[0] and request.tags["sn46/new_files"] == "1"
    # The reconcile is not due again for a while: the next tick only reads the queue.
    upload(store, HOTKEYS[1])
    lost = UploadEventQueue(queue_url, client=sqs)
    lost.acknowledge(lost.receive())
    assert tick(instance, store, queue_url, cursor=result.cursor).run_requests == []
    assert key in {o.key for o in store.list("data/")}
