"""Finding new uploads from S3 event notifications delivered to an SQS queue.

For AWS and MinIO at scale: instead of listing folders, a tick reads the
bucket's ``ObjectCreated`` notifications in batches of ten, so 500 new files
cost 50 receives and 50 batch deletes whatever the bucket holds. Messages
are at-least-once: a redelivered or duplicated message names the same key and
etag and so yields the same run key, and a message for a key that is gone
yields a run that finds nothing new. Deleting a message happens only after the
tick has turned it into run requests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from ..ss58 import is_ss58_address
from .keys import UPLOAD_PREFIX

#: SQS returns at most ten messages per receive and deletes at most ten per batch.
SQS_BATCH = 10


@dataclass
class UploadEvents:
    """One read of the queue: new upload keys per hotkey, and what was ignored."""

    new_files: dict[str, dict[str, str]] = field(default_factory=dict)
    """hotkey -> {upload key: etag}."""
    ignored: int = 0
    """Test events, deletions, keys outside ``data/hotkey=<ss58>/``."""
    malformed: int = 0
    """Messages that are not S3 notifications at all (deleted, so they cannot block the queue)."""
    receipts: list[str] = field(default_factory=list)
    requests: int = 0


class UploadEventQueue:
    """The SQS queue that receives the data bucket's object-created notifications."""

    def __init__(self, queue_url: str, *, client: Any = None, region: str | None = None) -> None:
        import boto3

        self.queue_url = queue_url
        self._client = client or boto3.client(
            "sqs", region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None
        )

    def receive(self, max_messages: int = 500, visibility_timeout: int = 300) -> UploadEvents:
        """Read up to ``max_messages`` notifications (hidden for ``visibility_timeout`` s until acknowledged)."""
        events = UploadEvents()
        while len(events.receipts) < max_messages:
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, max_messages - len(events.receipts)),
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=0,
            )
            events.requests += 1
            messages = response.get("Messages", [])
            for message in messages:
                events.receipts.append(message["ReceiptHandle"])
                _add_notification(events, message.get("Body", ""))
            if len(messages) < SQS_BATCH:
                break  # drained for now
        return events

    def acknowledge(self, events: UploadEvents) -> None:
        """Delete the messages of ``events`` from the queue, ten at a time."""
        for start in range(0, len(events.receipts), SQS_BATCH):
            batch = events.receipts[start : start + SQS_BATCH]
            self._client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(batch)],
            )
            events.requests += 1


def _add_notification(events: UploadEvents, body: str) -> None:
    try:
        records = json.loads(body).get("Records")
    except (ValueError, AttributeError):
        events.malformed += 1
        return
    if records is None:  # s3:TestEvent and other non-record messages
        events.ignored += 1
        return
    for key, etag in _created_objects(records):
        hotkey = _hotkey_of(key)
        if hotkey is None:
            events.ignored += 1
            continue
        events.new_files.setdefault(hotkey, {})[key] = etag


def _created_objects(records: Iterable[Any]) -> Iterable[tuple[str, str]]:
    for record in records if isinstance(records, list) else ():
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            obj = record["s3"]["object"]
            yield unquote_plus(obj["key"]), str(obj.get("eTag", ""))
        except (KeyError, TypeError):
            continue


def _hotkey_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) < 4 or f"{parts[0]}/" != UPLOAD_PREFIX or not parts[1].startswith("hotkey="):
        return None
    hotkey = parts[1].removeprefix("hotkey=")
    return hotkey if is_ss58_address(hotkey) else None
