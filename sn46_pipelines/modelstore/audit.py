"""The append-only audit trail: commits, pin changes, GC runs, imports and repairs.

Each event is its own object, created with create-if-absent under a key that
sorts by time, so events are never rewritten and listing them is the history.

Every event that makes versions visible (``commit``, ``import``, ``repair``)
names the newest version it wrote (``version_id``, ``record_hash``), so the
trail is also a witness of how far the chain once reached, kept apart from the
records and the ``HEAD`` hint it vouches for (see :func:`newest_version`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..objectstore import NotFoundError, ObjectStore
from .layout import AUDIT
from .record import canonical_json, whoami


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what, when."""

    kind: str
    who: str
    when: str
    what: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "who": self.who, "when": self.when, "what": self.what}


def append_event(objects: ObjectStore, kind: str, what: dict[str, Any]) -> AuditEvent:
    """Record one event; its key carries the time and kind so readers can filter by listing alone."""
    now = datetime.now(UTC)
    event = AuditEvent(kind=kind, who=whoami(), when=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), what=what)
    key = f"{AUDIT}{now.strftime('%Y%m%dT%H%M%S%fZ')}-{kind}-{uuid.uuid4().hex[:12]}.json"
    objects.put_if_absent(key, canonical_json(event.to_dict()))
    return event


def event_keys(objects: ObjectStore, kind: str | None = None) -> list[str]:
    """Keys of the events (of one ``kind``), oldest first."""
    keys = [info.key for info in objects.list(AUDIT)]
    if kind is not None:
        keys = [k for k in keys if _kind_of(k) == kind]
    return keys


def read_event(objects: ObjectStore, key: str) -> AuditEvent:
    raw = json.loads(objects.get(key))
    return AuditEvent(kind=raw["kind"], who=raw["who"], when=raw["when"], what=raw["what"])


def events(objects: ObjectStore, kind: str | None = None) -> Iterator[AuditEvent]:
    """The events (of one ``kind``), oldest first."""
    for key in event_keys(objects, kind):
        yield read_event(objects, key)


#: Kinds of event that name the newest version they made visible.
VERSION_KINDS = ("commit", "import", "repair")


def newest_version(objects: ObjectStore) -> AuditEvent | None:
    """The newest event that names a version it made visible, or ``None`` if there is none.

    Records are never deleted, so the version it names (and its record hash)
    must still be in the chain: verification uses it to tell a store whose
    newest versions were cut off from a store that never had them. One
    listing of ``audit/`` plus a GET or two.
    """
    keys = [k for k in event_keys(objects) if _kind_of(k) in VERSION_KINDS]
    for key in reversed(keys):
        try:
            event = read_event(objects, key)
        except NotFoundError:
            continue
        if isinstance(event.what.get("version_id"), str) and isinstance(event.what.get("record_hash"), str):
            return event
    return None


def _kind_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].split("-")[1]
