"""Demo miner and validator identities, and the metagraph snapshot that lists them.

Keys are real sr25519 keypairs derived from fixed URIs, so every run (and
every developer) gets the same hotkeys, and the gateway can verify requests
signed with them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np

from ..metagraph import MetagraphSnapshot, Neuron

NETUID = 46
#: Validators hold a permit and more stake than this (TAO): the gateway's default admission rule.
#: Miners hold far less.
VALIDATOR_MIN_STAKE = 20_000.0
_BLOCK_TIME_S = 12
_GENESIS = datetime(2023, 3, 20, tzinfo=UTC)  # anchors block numbers to dates


def miner_uri(index: int) -> str:
    """Secret URI of demo miner ``index``'s hotkey (``Keypair.create_from_uri``)."""
    return f"//sn46-demo-miner-{index}"


def validator_uri(index: int) -> str:
    """Secret URI of demo validator ``index``'s hotkey."""
    return f"//sn46-demo-validator-{index}"


def keypair(uri: str):
    """The sr25519 keypair for a secret URI (bittensor imported here: it is slow to load)."""
    from bittensor.sp_core import Keypair

    return Keypair.create_from_uri(uri)


def ss58(uri: str) -> str:
    """The ss58 address of the keypair behind ``uri``."""
    return keypair(uri).ss58_address


def demo_neurons(rng: np.random.Generator, miners: int, validators: int) -> list[Neuron]:
    """Validators first (uids 0..), then miners; stakes drawn from ``rng``."""
    neurons = []
    for i in range(validators):
        stake = round(float(rng.uniform(VALIDATOR_MIN_STAKE + 1_000, 60_000)), 3)
        neurons.append(Neuron(i, ss58(validator_uri(i)), ss58(validator_uri(i) + "/cold"), True, stake))
    for i in range(miners):
        stake = round(float(rng.uniform(0, 150)), 3)
        neurons.append(Neuron(validators + i, ss58(miner_uri(i)), ss58(miner_uri(i) + "/cold"), False, stake))
    return neurons


def block_at(when: datetime) -> int:
    """A plausible chain height at ``when`` (one block per 12 s), deterministic for a date."""
    return int((when - _GENESIS).total_seconds()) // _BLOCK_TIME_S


def metagraph_json(neurons: list[Neuron], block: int) -> bytes:
    """The snapshot format the gateway reads: ``{"netuid", "block", "neurons": [...]}``."""
    snapshot = MetagraphSnapshot(NETUID, block, {n.hotkey: n for n in neurons}, fetched_at=0.0)
    return json.dumps(snapshot.to_json(), indent=1).encode()
