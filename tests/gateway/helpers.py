"""Real sr25519 keys, the metagraph they are registered in, and request bodies as today's clients build them.

Keys come from dev URIs (``//Alice`` ...), so every signature is a real
sr25519 signature verified by the same code that serves miners.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bittensor.sp_core import Keypair

from tests.support.paths import REPO

MINER = Keypair.create_from_uri("//Miner1")
MINER_COLDKEY = Keypair.create_from_uri("//Miner1Cold")
MINER2 = Keypair.create_from_uri("//Miner2")
VALIDATOR = Keypair.create_from_uri("//Alice")
LOW_STAKE = Keypair.create_from_uri("//Bob")  # permit, stake below the threshold
NO_PERMIT = Keypair.create_from_uri("//Charlie")  # stake, no permit
STRANGER = Keypair.create_from_uri("//Eve")  # not registered
GATEWAY = Keypair.create_from_uri("//Gateway")


def snapshot(netuid: int = 46) -> dict[str, Any]:
    neurons = [
        (MINER, MINER_COLDKEY.ss58_address, False, 0.0),
        (MINER2, "", False, 5.0),
        (VALIDATOR, "", True, 50_000.0),
        (LOW_STAKE, "", True, 10.0),
        (NO_PERMIT, "", False, 90_000.0),
    ]
    return {
        "netuid": netuid,
        "block": 4_200_000,
        "neurons": [
            {
                "uid": uid,
                "hotkey": kp.ss58_address,
                "coldkey": cold,
                "validator_permit": permit,
                "stake": stake,
            }
            for uid, (kp, cold, permit, stake) in enumerate(neurons)
        ],
    }


def sign(keypair: Keypair, message: str) -> str:
    return keypair.sign(message.encode()).hex()


def miner_request(
    kp: Keypair = MINER, coldkey: str | None = None, ts: int | None = None, **extra: Any
) -> dict:
    """A ``/get-folder-access`` body exactly as today's miners build it."""
    ts = int(time.time()) if ts is None else ts
    coldkey = coldkey or MINER_COLDKEY.ss58_address
    commitment = f"s3:data:access:{coldkey}:{kp.ss58_address}:{ts}"
    return {
        "coldkey": coldkey,
        "hotkey": kp.ss58_address,
        "timestamp": ts,
        "signature": sign(kp, commitment),
        **extra,
    }


def validator_request(kp: Keypair = VALIDATOR, ts: int | None = None, **extra: Any) -> dict:
    ts = int(time.time()) if ts is None else ts
    return {
        "hotkey": kp.ss58_address,
        "timestamp": ts,
        "signature": sign(kp, f"s3:validator:access:{ts}"),
        **extra,
    }


def miner_specific_request(miner: str, kp: Keypair = VALIDATOR, ts: int | None = None, **extra: Any) -> dict:
    ts = int(time.time()) if ts is None else ts
    commitment = f"s3:validator:miner:{miner}:{ts}"
    return {
        "hotkey": kp.ss58_address,
        "timestamp": ts,
        "signature": sign(kp, commitment),
        "miner_hotkey": miner,
        **extra,
    }


def file_urls_request(miner: str, keys: list[str], kp: Keypair = VALIDATOR, ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    commitment = f"s3:validator:files:{miner}:{kp.ss58_address}:{ts}"
    return {
        "hotkey": kp.ss58_address,
        "timestamp": ts,
        "signature": sign(kp, commitment),
        "miner_hotkey": miner,
        "file_keys": keys,
        "expiry_hours": 1,
    }


@contextlib.contextmanager
def gateway_process(port: int, env: dict[str, str], *, workers: int = 2) -> Iterator[subprocess.Popen[str]]:
    """``sn46 gateway --workers N`` as an operator starts it (stdout and stderr merged, as text);
    terminated when the block ends."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sn46_pipelines.cli",
            "gateway",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
