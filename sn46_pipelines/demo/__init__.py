"""Synthetic SN46 miner uploads with planted defects, for demos and end-to-end tests.

>>> report = seed_demo(open_store("file:///tmp/sn46-demo"), miners=12, seed=0)
>>> report.miners[1].defects, report.miners[1].expected
(['duplicates'], {'duplicate': 18})
>>> six = seed_demo(open_store("file:///tmp/sn46-rounds"), rounds=6, interval=timedelta(hours=2))
>>> [len(r.uploaded) for r in six.rounds], six.miners[1].expected_in(5)
([10, 10, 10, 10, 11, 11], {'duplicate': 18})
"""

import importlib
from typing import Any

#: Public names and the module that defines each. Loaded on first use, so that
#: ``sn46 --help`` (which imports ``cli.demo``) does not pay for pyarrow and bittensor.
_EXPORTS = {
    "DEFECTS": ".defects",
    "miner_uri": ".identities",
    "validator_uri": ".identities",
    "SeededFile": ".seed",
    "SeededMiner": ".seed",
    "SeededRound": ".seed",
    "SeedReport": ".seed",
    "default_now": ".seed",
    "seed_demo": ".seed",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


__all__ = [
    "DEFECTS",
    "SeedReport",
    "SeededFile",
    "SeededMiner",
    "SeededRound",
    "default_now",
    "miner_uri",
    "seed_demo",
    "validator_uri",
]
