"""Synthetic SN46 miner uploads with planted defects, for demos and end-to-end tests.

>>> report = seed_demo(open_store("file:///tmp/sn46-demo"), miners=12, seed=0)
>>> report.miners[1].defects, report.miners[1].expected
(['duplicates'], {'duplicate': 18})
"""

from .defects import DEFECTS
from .identities import METAGRAPH_KEY, miner_uri, validator_uri
from .seed import SeededFile, SeededMiner, SeedReport, default_now, seed_demo

__all__ = [
    "DEFECTS",
    "METAGRAPH_KEY",
    "SeedReport",
    "SeededFile",
    "SeededMiner",
    "default_now",
    "miner_uri",
    "seed_demo",
    "validator_uri",
]
