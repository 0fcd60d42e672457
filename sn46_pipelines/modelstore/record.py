"""Version records: the immutable, hash-chained JSON that names a checkpoint.

A record commits to its files through ``content_hash`` (over the manifest) and
to all of history through ``parent`` (the previous record's ``record_hash``),
so editing any field of any version breaks a hash somewhere after it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidRecordError
from .layout import version_id

FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "counter",
    "version_id",
    "parent",
    "manifest",
    "content_hash",
    "message",
    "metadata",
    "timestamp",
    "record_hash",
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """The one byte form hashes are taken over: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a checkpoint: its content hash and size."""

    sha256: str
    size: int


Manifest = dict[str, ManifestEntry]


def manifest_to_json(manifest: Manifest) -> dict[str, dict[str, Any]]:
    return {path: {"sha256": e.sha256, "size": e.size} for path, e in sorted(manifest.items())}


def content_hash(manifest: Manifest) -> str:
    return sha256_hex(canonical_json(manifest_to_json(manifest)))


def check_file_path(path: str) -> str:
    """Reject manifest paths that could escape a checkout folder or mean two things."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise InvalidRecordError(
            f"invalid checkpoint file path {path!r}: use a relative path like 'model.pt'"
        )
    return path


def whoami() -> str:
    """``user@host``: who the audit trail and records name as the author."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One committed version. Build new ones with :func:`build_record`; never mutate."""

    counter: int
    parent: str | None
    manifest: Manifest
    content_hash: str
    message: str
    metadata: dict[str, Any]
    timestamp: str
    author: str
    record_hash: str
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version_id(self) -> str:
        return version_id(self.counter)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))

    @property
    def size(self) -> int:
        return sum(e.size for e in self.manifest.values())

    def body(self) -> dict[str, Any]:
        """Every field except ``record_hash``: what ``record_hash`` is computed over."""
        return {
            **self.extra,
            "format": self.format,
            "counter": self.counter,
            "version_id": self.version_id,
            "parent": self.parent,
            "manifest": manifest_to_json(self.manifest),
            "content_hash": self.content_hash,
            "message": self.message,
            "metadata": self.metadata,
            "timestamp": self.timestamp,
            "author": self.author,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "record_hash": self.record_hash}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def computed_record_hash(self) -> str:
        return sha256_hex(canonical_json(self.body()))


def build_record(
    counter: int,
    parent: VersionRecord | None,
    manifest: Manifest,
    *,
    message: str = "",
    metadata: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
    author: str | None = None,
) -> VersionRecord:
    """A new record chained onto ``parent`` (``None`` only for the genesis, counter 0)."""
    if (parent is None) != (counter == 0) or (parent is not None and parent.counter != counter - 1):
        raise InvalidRecordError(
            f"record {counter} cannot follow {parent.version_id if parent else 'nothing'}"
        )
    for path in manifest:
        check_file_path(path)
    metadata = dict(metadata or {})
    canonical_json(metadata)  # fail now on values JSON cannot hold
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    draft = VersionRecord(
        counter=counter,
        parent=parent.record_hash if parent else None,
        manifest=dict(sorted(manifest.items())),
        content_hash=content_hash(manifest),
        message=message,
        metadata=metadata,
        timestamp=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        author=author or whoami(),
        record_hash="",
    )
    return replace(draft, record_hash=draft.computed_record_hash())


def parse_record(data: bytes, *, where: str = "record") -> VersionRecord:
    """Parse stored record bytes; :class:`InvalidRecordError` if they are not a well-formed record.

    Hashes are *not* checked here (verification does that and names what broke).
    """
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRecordError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidRecordError(f"{where} is not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise InvalidRecordError(f"{where} lacks {', '.join(missing)}")
    try:
        counter = raw["counter"]
        if not isinstance(counter, int) or isinstance(counter, bool) or counter < 0:
            raise ValueError(f"counter {counter!r} is not a non-negative integer")
        if raw["version_id"] != version_id(counter):
            raise ValueError(f"version_id {raw['version_id']!r} does not match counter {counter}")
        manifest = {
            check_file_path(path): ManifestEntry(sha256=_hex(e["sha256"]), size=_size(e["size"]))
            for path, e in raw["manifest"].items()
        }
        if raw["parent"] is not None:
            _hex(raw["parent"])
        if not isinstance(raw["metadata"], dict) or not isinstance(raw["message"], str):
            raise ValueError("metadata must be an object and message a string")
        known = {*REQUIRED_KEYS, "format", "author"}
        return VersionRecord(
            counter=counter,
            parent=raw["parent"],
            manifest=manifest,
            content_hash=_hex(raw["content_hash"]),
            message=raw["message"],
            metadata=raw["metadata"],
            timestamp=str(raw["timestamp"]),
            author=str(raw.get("author", "")),
            record_hash=_hex(raw["record_hash"]),
            format=int(raw.get("format", FORMAT_VERSION)),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{where} is malformed: {exc}") from exc


def _hex(value: Any) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ValueError(f"{value!r} is not a sha256 hex digest")
    return value


def _size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"size {value!r} is not a non-negative integer")
    return value


def parse_version(text: str | int) -> int:
    """``42``, ``"42"`` or ``"v0000000042"`` as a counter (``head``/``pin:`` are resolved by the store)."""
    if isinstance(text, int) and not isinstance(text, bool):
        counter = text
    else:
        s = str(text).strip()
        digits = s[1:] if s[:1] in ("v", "V") else s
        if not digits.isdigit():
            raise InvalidRecordError(f"invalid version {text!r}: use v0000000042, 42, head or pin:NAME")
        counter = int(digits)
    if counter < 0:
        raise InvalidRecordError(f"invalid version {text!r}: counters start at 0")
    return counter
