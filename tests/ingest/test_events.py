"""Event mode: S3 notifications delivered by moto's server to its SQS, read by the sensor."""

from __future__ import annotations

import json
import uuid

import boto3
import dagster as dg
import pytest
from bittensor.sp_core import Keypair

from sn46_pipelines.listings.events import UploadEventQueue
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor

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
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
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


def tick(instance, store, queue_url):
    resource = DataStoreResource(url=store.url, events_queue=queue_url)
    return miner_upload_sensor(dg.build_sensor_context(instance=instance, resources={"data_store": resource}))


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
    # Everything read was acknowledged: the queue is empty now.
    assert tick(instance, store, queue_url).run_requests == []


def test_duplicate_and_redelivered_messages_give_the_same_run_key(notified, instance):
    store, queue_url, sqs = notified
    upload(store, HOTKEYS[0])
    queue = UploadEventQueue(queue_url, client=sqs)
    peek = queue.receive(visibility_timeout=0)  # read but not acknowledged: redelivered
    assert sum(len(f) for f in peek.new_files.values()) == 1
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                     VisibilityTimeout=0).get("Messages", [])]
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
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete"}]}))
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
