"""Where each kind of object lives inside a model store (see docs/modelstore-format.md)."""

from __future__ import annotations

import re

RECORDS = "records/"
BLOBS = "blobs/sha256/"
COLLECTED = "collected/"
PINS = "pins/"
AUDIT = "audit/"
INFLIGHT = "inflight/"
SEGMENTS = "segments/"
HEAD_HINT = "HEAD"
GC_LEASE = "locks/gc.json"

_RECORD_KEY = re.compile(r"^records/v(\d{10})\.json$")
_COLLECTED_KEY = re.compile(r"^collected/v(\d{10})\.json$")
_BLOB_KEY = re.compile(r"^blobs/sha256/[0-9a-f]{2}/([0-9a-f]{64})$")


def version_id(counter: int) -> str:
    """``v`` and the counter on ten digits, so keys sort in commit order."""
    return f"v{counter:010d}"


def record_key(counter: int) -> str:
    return f"{RECORDS}{version_id(counter)}.json"


def collected_key(counter: int) -> str:
    return f"{COLLECTED}{version_id(counter)}.json"


def blob_key(sha256: str) -> str:
    return f"{BLOBS}{sha256[:2]}/{sha256}"


def segment_key(first: int) -> str:
    return f"{SEGMENTS}{version_id(first)}.json"


def pin_key(name: str) -> str:
    return f"{PINS}{name}.json"


def counter_of_record_key(key: str) -> int | None:
    m = _RECORD_KEY.match(key)
    return int(m.group(1)) if m else None


def counter_of_collected_key(key: str) -> int | None:
    m = _COLLECTED_KEY.match(key)
    return int(m.group(1)) if m else None


def sha_of_blob_key(key: str) -> str | None:
    m = _BLOB_KEY.match(key)
    return m.group(1) if m else None
