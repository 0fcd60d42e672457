"""Who is registered on the subnet, and who may act as a validator.

One :class:`MetagraphSyncer` refreshes a snapshot in a background thread from
either source: a JSON snapshot file (offline use, tests, ``sn46 demo seed``)
or the chain through bittensor's client. It never blocks start-up, and on a
failed refresh it keeps serving the last good snapshot, because a chain
hiccup must not lock every miner out. Until the first snapshot arrives the
gateway answers 503, not "unregistered".

Snapshot file format::

    {"netuid": 46, "block": 123,
     "neurons": [{"uid": 0, "hotkey": "5F...", "coldkey": "5C...",
                  "validator_permit": true, "stake": 25000.0}]}

``stake`` is the stake the :class:`ValidatorRule` compares: the chain source
fills it with the measure the rule names (alpha stake on the subnet by
default, or total stake), and a snapshot file is read as holding that measure.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..metagraph import MetagraphSnapshot, Neuron

log = logging.getLogger(__name__)


#: Which stake a validator is measured by: alpha staked on the subnet, or total stake (TAO value).
StakeMeasure = Literal["alpha", "total"]
STAKE_MEASURES: tuple[StakeMeasure, ...] = ("alpha", "total")


@dataclass(frozen=True, slots=True)
class ValidatorRule:
    """Who may use the validator endpoints: the one rule, configurable.

    The default is the reference SN46 API's rule: a validator permit and more
    than 20,000 alpha, compared in whole units as it compares them
    (``int(alpha_stake) > 20_000``, so 20,000.9 alpha is not enough).
    """

    permit_required: bool = True
    stake: StakeMeasure = "alpha"
    #: The stake must exceed this, in whole units of :attr:`stake`.
    min_stake: float = 20_000.0

    def admits(self, neuron: Neuron | None) -> bool:
        if neuron is None or (self.permit_required and not neuron.validator_permit):
            return False
        return math.floor(neuron.stake) > self.min_stake

    def describe(self) -> str:
        """The rule in words, for refusals and ``/commitment-formats``."""
        stake = f"more than {self.min_stake:,g} {'alpha' if self.stake == 'alpha' else 'total'} stake"
        return f"a validator permit and {stake}" if self.permit_required else stake


def file_source(path: Path, netuid: int) -> Callable[[], MetagraphSnapshot]:
    """Read a snapshot file; a snapshot of another subnet is an error, not a silent mix-up."""

    def fetch() -> MetagraphSnapshot:
        snapshot = MetagraphSnapshot.from_json(json.loads(Path(path).read_text()))
        if snapshot.netuid != netuid:
            raise ValueError(f"{path} is a snapshot of netuid {snapshot.netuid}, not {netuid}")
        return snapshot

    return fetch


def chain_source(network: str, netuid: int, stake: StakeMeasure = "alpha") -> Callable[[], MetagraphSnapshot]:
    """Read the metagraph from the chain (one runtime-API call, commitments skipped).

    Each neuron's ``stake`` is the measure the validator rule compares: its
    alpha stake on the subnet (``alpha``) or its total stake (``total``).
    """
    import bittensor as bt

    subtensor = bt.Subtensor(network=network)
    attribute = {"alpha": "alpha_stake", "total": "total_stake"}[stake]

    def fetch() -> MetagraphSnapshot:
        graph = subtensor.subnets.metagraph(netuid, commitments=False)
        if graph is None:
            raise ValueError(f"subnet {netuid} does not exist on {network}")
        neurons = {
            n.hotkey: Neuron(
                n.uid, n.hotkey, n.coldkey, bool(n.validator_permit), float(getattr(n, attribute).tao)
            )
            for n in graph.neurons
        }
        return MetagraphSnapshot(netuid, int(graph.block), neurons, time.time())

    return fetch


class MetagraphSyncer:
    """Keeps the latest good snapshot from ``source``, refreshed every ``interval_s`` in a daemon thread."""

    def __init__(self, source: Callable[[], MetagraphSnapshot], interval_s: float, name: str) -> None:
        self._source = source
        self.interval_s = interval_s
        self.name = name
        self._snapshot: MetagraphSnapshot | None = None
        self.last_error: str | None = None
        self.last_attempt: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> MetagraphSnapshot | None:
        """The last good snapshot, or None before the first successful refresh."""
        return self._snapshot

    def refresh(self) -> bool:
        """Fetch once; on failure keep the previous snapshot and remember why."""
        self.last_attempt = time.time()
        try:
            self._snapshot = self._source()
        except Exception as exc:  # noqa: BLE001 - any source failure: keep serving the last good snapshot
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("metagraph refresh from %s failed: %s", self.name, self.last_error)
            return False
        self.last_error = None
        return True

    def start(self) -> None:
        """Refresh now and then periodically, all in the background."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metagraph-syncer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval_s)

    def status(self) -> dict[str, Any]:
        """What the healthcheck shows."""
        snap = self._snapshot
        return {
            "source": self.name,
            "loaded": snap is not None,
            "netuid": snap.netuid if snap else None,
            "block": snap.block if snap else None,
            "age_s": round(time.time() - snap.fetched_at, 1) if snap else None,
            "hotkeys": len(snap.neurons) if snap else 0,
            "refresh_interval_s": self.interval_s,
            "last_error": self.last_error is not None,
        }
