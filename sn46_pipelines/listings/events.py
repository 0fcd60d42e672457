"""Finding new uploads from S3 event notifications delivered to an SQS queue.

For AWS and MinIO at scale: instead of listing folders, a tick reads the
bucket's ``ObjectCreated`` notifications in batches of ten, so 500 new files
cost 50 receives and 50 batch deletes whatever the bucket holds. Notifications
come straight from S3, wrapped by SNS (``{"Type": "Notification", "Message":
...}``) or from EventBridge (``{"source": "aws.s3", "detail": ...}``); keys are
bucket keys, so a store under a key prefix reads only its own (the prefix cut
off) and other buckets' messages are ignored.

Nothing is lost, at least once: a message is deleted only once the run
requests it led to are durably recorded. The sensor keeps the receipt handles
of one tick in the cursor it returns with that tick's run requests (Dagster
stores both together) and deletes them on the next tick (:class:`EventCursor`).
A tick that dies before that leaves its messages in the queue: they come back
when their visibility timeout (the queue's own setting) ends. A redelivered or
duplicated message names the same key and etag and so yields the same run
key, and a key already ingested (its manifest holds that etag) is dropped, so
nothing is ingested twice; a message for a key that is gone yields a run that
finds nothing new.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from ..ss58 import is_ss58_address
from .discovery import ScanCursor
from .layout import HOTKEY_FOLDER, UPLOAD_PREFIX

#: SQS returns at most ten messages per receive and deletes at most ten per batch.
SQS_BATCH = 10


@dataclass
class UploadEvents:
    """One read of the queue: new upload keys per hotkey, and what was ignored."""

    new_files: dict[str, dict[str, str]] = field(default_factory=dict)
    """hotkey -> {upload key: etag}."""
    ignored: int = 0
    """Test events, deletions, other buckets, keys outside ``{prefix}data/hotkey=<ss58>/``."""
    malformed: int = 0
    """Messages that are not S3 notifications at all (deleted, so they cannot block the queue)."""
    receipts: list[str] = field(default_factory=list)
    requests: int = 0


@dataclass
class EventCursor:
    """What event mode remembers between ticks (serialised as the sensor's Dagster cursor)."""

    pending: list[str] = field(default_factory=list)
    """Receipt handles of the messages the tick that wrote this cursor turned into run requests:
    recorded with them, so the next tick may delete them."""
    reconciled_at: str = ""
    """ISO time of the last listing reconcile (empty: never, so the next tick runs one)."""
    scan: ScanCursor = field(default_factory=ScanCursor)
    """The reconcile's listing cursor (the listing mode's, carried over when the mode changes)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "mode": "events",
                "pending": self.pending,
                "reconciled_at": self.reconciled_at,
                "scan": json.loads(self.scan.to_json()),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> EventCursor:
        """Parse a cursor; a listing-mode cursor becomes the reconcile's; anything unreadable starts fresh.

        Starting fresh loses no upload: undeleted messages come back after their visibility
        timeout, and the first tick reconciles against the manifests.
        """
        try:
            data = json.loads(text or "")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        if data.get("mode") != "events":
            return cls(scan=ScanCursor.from_json(text))
        pending = data.get("pending")
        return cls(
            pending=[str(h) for h in pending] if isinstance(pending, list) else [],
            reconciled_at=str(data.get("reconciled_at") or ""),
            scan=ScanCursor.from_json(json.dumps(data.get("scan"))),
        )


class UploadEventQueue:
    """The SQS queue that receives the data bucket's object-created notifications.

    ``bucket`` and ``key_prefix`` are the data store's: only that bucket's
    keys under that prefix are uploads (the prefix is cut off, giving store
    keys). ``bucket`` None accepts any bucket.
    """

    def __init__(
        self,
        queue_url: str,
        *,
        bucket: str | None = None,
        key_prefix: str = "",
        client: Any = None,
        region: str | None = None,
    ) -> None:
        import boto3

        self.queue_url = queue_url
        self.bucket = bucket
        self.key_prefix = key_prefix
        self._client = client or boto3.client(
            "sqs", region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None
        )

    def receive(self, max_messages: int = 500, visibility_timeout: int | None = None) -> UploadEvents:
        """Read up to ``max_messages`` notifications, hidden until deleted or until the visibility timeout
        ends (``visibility_timeout`` seconds; by default the queue's own setting)."""
        events = UploadEvents()
        hidden = {} if visibility_timeout is None else {"VisibilityTimeout": visibility_timeout}
        while len(events.receipts) < max_messages:
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, max_messages - len(events.receipts)),
                WaitTimeSeconds=0,
                **hidden,
            )
            events.requests += 1
            messages = response.get("Messages", [])
            for message in messages:
                events.receipts.append(message["ReceiptHandle"])
                self._add_notification(events, message.get("Body", ""))
            if len(messages) < SQS_BATCH:
                break  # drained for now
        return events

    def acknowledge(self, events: UploadEvents) -> None:
        """Delete the messages of ``events`` from the queue, ten at a time."""
        events.requests += self.delete(events.receipts)[1]

    def delete(self, receipts: list[str]) -> tuple[list[str], int]:
        """Delete messages by receipt handle; return the handles SQS refused, and the requests made.

        A refused handle is one SQS no longer honours (the message was received again, or it is
        gone): that message was, or will be, delivered again, which the run keys make harmless.
        """
        refused: list[str] = []
        requests = 0
        for start in range(0, len(receipts), SQS_BATCH):
            batch = receipts[start : start + SQS_BATCH]
            response = self._client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(batch)],
            )
            requests += 1
            refused += [batch[int(failure["Id"])] for failure in response.get("Failed", [])]
        return refused, requests

    def _add_notification(self, events: UploadEvents, body: str) -> None:
        created = _created_objects(body)
        if created is None:
            events.malformed += 1
            return
        if not created:  # s3:TestEvent, deletions and other non-upload messages
            events.ignored += 1
        for bucket, key, etag in created:
            hotkey = None
            if (self.bucket is None or bucket == self.bucket) and key.startswith(self.key_prefix):
                key = key.removeprefix(self.key_prefix)
                hotkey = _hotkey_of(key)
            if hotkey is None:
                events.ignored += 1
                continue
            events.new_files.setdefault(hotkey, {})[key] = etag


def unprocessed(events: UploadEvents, processed: Callable[[str], dict[str, str]]) -> int:
    """Drop from ``events`` the files a hotkey's manifest already holds with the same etag; return how many.

    ``processed(hotkey)`` maps key -> etag (the manifest's). A redelivered
    message for a file already ingested then requests no run at all.
    """
    dropped = 0
    for hotkey in list(events.new_files):
        done = {key: etag.strip('"') for key, etag in processed(hotkey).items()}
        files = events.new_files[hotkey]
        for key in [k for k, etag in files.items() if done.get(k) == etag.strip('"')]:
            del files[key]
            dropped += 1
        if not files:
            del events.new_files[hotkey]
    return dropped


def _created_objects(body: str) -> list[tuple[str, str, str]] | None:
    """(bucket, key, etag) of each object one message says was created; None when it is no notification.

    S3 URL-encodes keys in its own records; EventBridge sends them as they are.
    """
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":  # SNS, raw delivery off
            message = json.loads(message["Message"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):
        if message.get("detail-type") != "Object Created":
            return []
        try:
            detail = message["detail"]
            return [
                (
                    str(detail["bucket"]["name"]),
                    str(detail["object"]["key"]),
                    str(detail["object"].get("etag", "")),
                )
            ]
        except (KeyError, TypeError):
            return None
    records = message.get("Records")
    created = []
    for record in records if isinstance(records, list) else ():
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            obj = record["s3"]["object"]
            bucket = str(record["s3"].get("bucket", {}).get("name", ""))
            created.append((bucket, unquote_plus(obj["key"]), str(obj.get("eTag", ""))))
        except (KeyError, TypeError, AttributeError):
            continue
    return created


def _hotkey_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) < 4 or f"{parts[0]}/" != UPLOAD_PREFIX or not parts[1].startswith(HOTKEY_FOLDER):
        return None
    hotkey = parts[1].removeprefix(HOTKEY_FOLDER)
    return hotkey if is_ss58_address(hotkey) else None
