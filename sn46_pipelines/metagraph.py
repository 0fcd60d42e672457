"""The metagraph snapshot format: the subnet's neurons at one block.

One JSON document, ``{"netuid": 46, "block": N, "neurons": [{"uid", "hotkey",
"coldkey", "validator_permit", "stake"}]}``: ``sn46 demo seed`` writes it and
the upload gateway reads it (``SN46_METAGRAPH_FILE``) when it runs offline.
In the data store it lives at :data:`METAGRAPH_KEY` (:mod:`.listings.layout`), where the pipeline reads
who is registered (:func:`registered_hotkeys`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .listings.layout import METAGRAPH_KEY

if TYPE_CHECKING:
    from .objectstore import ObjectStore


class MetagraphSnapshotError(ConfigError):
    """The data store's metagraph snapshot exists but cannot be read as one."""


@dataclass(frozen=True, slots=True)
class Neuron:
    """One registered hotkey."""

    uid: int
    hotkey: str
    coldkey: str
    validator_permit: bool
    #: Total stake, in TAO.
    stake: float


@dataclass(frozen=True)
class MetagraphSnapshot:
    """The subnet's neurons at one block, indexed by hotkey."""

    netuid: int
    block: int
    neurons: Mapping[str, Neuron]
    #: Unix time the snapshot was read.
    fetched_at: float

    def get(self, hotkey: str) -> Neuron | None:
        return self.neurons.get(hotkey)

    @classmethod
    def from_json(cls, data: Any, *, fetched_at: float | None = None) -> MetagraphSnapshot:
        """Build a snapshot from the file format; ``ValueError`` says what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("neurons"), list):
            raise ValueError("expected an object with a 'neurons' list")
        try:
            neurons = {
                n["hotkey"]: Neuron(
                    uid=int(n["uid"]),
                    hotkey=str(n["hotkey"]),
                    coldkey=str(n.get("coldkey", "")),
                    validator_permit=bool(n.get("validator_permit", False)),
                    stake=float(n.get("stake", 0.0)),
                )
                for n in data["neurons"]
            }
            netuid, block = int(data["netuid"]), int(data.get("block", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad neuron entry: {type(exc).__name__}: {exc}") from None
        return cls(netuid, block, neurons, time.time() if fetched_at is None else fetched_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "netuid": self.netuid,
            "block": self.block,
            "neurons": [
                {
                    "uid": n.uid,
                    "hotkey": n.hotkey,
                    "coldkey": n.coldkey,
                    "validator_permit": n.validator_permit,
                    "stake": n.stake,
                }
                for n in sorted(self.neurons.values(), key=lambda n: n.uid)
            ],
        }


def read_snapshot(store: ObjectStore) -> MetagraphSnapshot | None:
    """The data store's snapshot, or None when there is none; :class:`MetagraphSnapshotError` if it is bad."""
    import json

    from .objectstore import NotFoundError

    try:
        raw = store.get(METAGRAPH_KEY)
    except NotFoundError:
        return None
    try:
        return MetagraphSnapshot.from_json(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise MetagraphSnapshotError(
            f"{store.url}/{METAGRAPH_KEY}: not a metagraph snapshot: {exc}"
        ) from None


def registered_hotkeys(store: ObjectStore) -> frozenset[str] | None:
    """Hotkeys registered on the subnet by the data store's snapshot; None (everyone) without one.

    A hotkey that leaves the metagraph is inactive: it gets no score and its
    partition is retired, while its uploads and curated files stay for audit.
    Registering again makes it active on its next upload.
    """
    snapshot = read_snapshot(store)
    return None if snapshot is None else frozenset(snapshot.neurons)
