"""Deployment pins (``prod``, ``staging``, ...): a name that serves one version or tracks the head.

A pin is one small object replaced by compare-and-swap, so two people moving
the same pin never lose an update silently; every change is also an audit
event, which is the pin's history. GC treats pinned versions as live.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..objectstore import NotFoundError, PreconditionFailedError
from . import audit
from .errors import InvalidRecordError, ModelStoreError, VersionCollectedError, VersionNotFoundError
from .layout import PINS, pin_key, version_id
from .record import canonical_json, whoami

if TYPE_CHECKING:  # pins are read through a store, and the store resolves ``pin:NAME`` through them
    from .store import ModelStore


class PinMode(StrEnum):
    """What a pin serves; the value is what the pin object stores (docs/modelstore-format.md)."""

    PINNED = "pinned"
    """One fixed version, until the pin is moved."""
    TRACKING = "tracking"
    """Whatever the head is, at each read."""


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CAS_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class Pin:
    """Where a deployment name points: a fixed ``counter`` (pinned) or the head (tracking)."""

    name: str
    mode: PinMode
    counter: int | None
    revision: int
    updated_at: str
    updated_by: str

    @property
    def version_id(self) -> str | None:
        return version_id(self.counter) if self.counter is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (the mode as its string), for JSON and Dagster metadata."""
        return {**asdict(self), "mode": self.mode.value, "version_id": self.version_id}


def check_pin_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRecordError(
            f"invalid pin name {name!r}: use lowercase letters, digits, '.', '_' or '-' (like 'prod')"
        )
    return name


def _parse(data: bytes, name: str) -> Pin:
    raw = json.loads(data)
    return Pin(
        name=name,
        mode=PinMode(raw["mode"]),
        counter=raw["counter"],
        revision=raw["revision"],
        updated_at=raw["updated_at"],
        updated_by=raw["updated_by"],
    )


def read_pin(store: ModelStore, name: str) -> Pin:
    try:
        return _parse(store.objects.get(pin_key(check_pin_name(name))), name)
    except NotFoundError:
        raise VersionNotFoundError(f"{store.url}: no pin named {name!r}") from None


def read_pins(store: ModelStore) -> dict[str, Pin]:
    """Every pin by name."""
    keys = [info.key for info in store.objects.list(PINS, delimiter="/") if info.key.endswith(".json")]
    pins = {}
    for key, data in store.fetch_raw(keys):
        if data is not None:
            name = key[len(PINS) : -len(".json")]
            pins[name] = _parse(data, name)
    return pins


def resolve_pin(store: ModelStore, name: str) -> int:
    """The counter a pin serves right now (the head, for a tracking pin)."""
    pin = read_pin(store, name)
    return store.resolve("head") if pin.mode == PinMode.TRACKING else pin.counter  # type: ignore[return-value]


def set_pin(store: ModelStore, name: str, version: int | str | None = None, *, track: bool = False) -> Pin:
    """Point ``name`` at ``version`` (pinned) or at the head (``track=True``); return the new pin.

    A missing or garbage-collected version is refused. If GC collects the
    version between the check and the write, the change is undone and refused.
    """
    check_pin_name(name)
    if track == (version is not None):
        raise InvalidRecordError("give either a version to pin or track=True, not both or neither")
    counter = None
    if not track:
        counter = store.get(version).counter  # type: ignore[arg-type]
        _require_live(store, counter)
    previous, pin = _swap(store, name, PinMode.TRACKING if track else PinMode.PINNED, counter)
    if counter is not None and store.is_collected(counter):
        if previous is None:
            store.objects.delete(pin_key(name))
        else:
            _swap(store, name, previous.mode, previous.counter)
        raise VersionCollectedError(
            f"{version_id(counter)} was garbage-collected while pinning; pin unchanged"
        )
    audit.append_event(
        store.objects,
        "pin",
        {"name": name, "old": previous.to_dict() if previous else None, "new": pin.to_dict()},
    )
    return pin


def _require_live(store: ModelStore, counter: int) -> None:
    if store.is_collected(counter):
        raise VersionCollectedError(f"cannot pin {version_id(counter)}: it was garbage-collected")


def _swap(store: ModelStore, name: str, mode: PinMode, counter: int | None) -> tuple[Pin | None, Pin]:
    """Compare-and-swap the pin object; retried on a lost race since setting a pin is idempotent."""
    key = pin_key(name)
    for _ in range(_CAS_ATTEMPTS):
        try:
            etag = store.objects.head(key).etag
            previous = _parse(store.objects.get(key), name)
        except NotFoundError:
            etag, previous = None, None
        pin = Pin(
            name=name,
            mode=mode,
            counter=counter,
            revision=previous.revision + 1 if previous else 1,
            updated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            updated_by=whoami(),
        )
        body = canonical_json({k: v for k, v in pin.to_dict().items() if k not in ("name", "version_id")})
        try:
            if etag is None:
                store.objects.put_if_absent(key, body)
            else:
                store.objects.put_if_match(key, body, etag)
        except PreconditionFailedError:
            continue
        return previous, pin
    raise ModelStoreError(f"pin {name!r} kept changing under us ({_CAS_ATTEMPTS} attempts); try again")


def pin_history(store: ModelStore, name: str) -> list[audit.AuditEvent]:
    """Every change of pin ``name``, oldest first."""
    return [e for e in audit.events(store.objects, "pin") if e.what.get("name") == name]
