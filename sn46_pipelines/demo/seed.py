"""``seed_demo``: write a small, realistic SN46 upload area with known defects into a store.

Everything is derived from ``seed`` and ``now``, so the same pair gives
byte-identical files under identical keys: tests can assert exact outcomes
and re-seeding overwrites instead of piling up. ``now`` defaults to today's
UTC midnight (not the current second) so re-running the same day is still
identical, while the listings stay inside the 30-day freshness window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from sn46_pipelines.objectstore import ObjectStore

from .defects import DEFECTS
from .identities import METAGRAPH_KEY, Neuron, block_at, demo_neurons, metagraph_json
from .places import PLACES
from .uploads import FileDraft, MinerDraft

DEFAULT_MINERS = 12
DEFAULT_VALIDATORS = 3
#: Rows per clean file: a few hundred keeps the whole demo seed to about a second.
ROWS_PER_FILE = (200, 400)


@dataclass(frozen=True, slots=True)
class SeededFile:
    key: str
    job_id: str
    rows: int
    size: int
    planted: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeededMiner:
    uid: int
    hotkey: str
    defects: list[str]
    files: list[SeededFile]

    @property
    def expected(self) -> dict[str, int]:
        """Quarantine entries by reason code that curating this miner must produce."""
        totals: dict[str, int] = {}
        for f in self.files:
            for reason, count in f.expected.items():
                totals[reason] = totals.get(reason, 0) + count
        return totals


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What was written, and which miner carries which defect."""

    store_url: str
    seed: int
    now: datetime
    metagraph_key: str
    block: int
    miners: list[SeededMiner]
    validators: list[Neuron]
    #: Defects that did not fit (one miner each, after the clean miner 0).
    unplanted: list[str]

    @property
    def files(self) -> list[SeededFile]:
        return [f for m in self.miners for f in m.files]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["now"] = self.now.isoformat()
        for miner, out in zip(self.miners, doc["miners"]):
            out["expected"] = miner.expected
        return doc

    def summary(self) -> str:
        """A few lines for humans: where, how much, who got which defect."""
        rows = sum(f.rows for f in self.files)
        lines = [
            f"seeded {self.store_url}: {len(self.miners)} miners, {len(self.validators)} validators, "
            f"{len(self.files)} files, {rows} rows (seed {self.seed}, now {self.now.isoformat()})",
            f"metagraph snapshot at {self.metagraph_key} (block {self.block})",
        ]
        for m in self.miners:
            lines.append(
                f"  uid {m.uid:>3} {m.hotkey}  {len(m.files)} files  {', '.join(m.defects) or 'clean'}"
            )
        if self.unplanted:
            lines.append(f"not planted (too few miners): {', '.join(self.unplanted)}")
        return "\n".join(lines)


def default_now() -> datetime:
    """Today's UTC midnight: the demo's reference time unless one is given."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def seed_demo(
    store: ObjectStore,
    *,
    miners: int = DEFAULT_MINERS,
    validators: int = DEFAULT_VALIDATORS,
    seed: int = 0,
    now: datetime | None = None,
) -> SeedReport:
    """Write demo uploads for ``miners`` miners and a metagraph snapshot; return what was planted.

    Miner 0 is always clean (and the donor others copy from); defect ``k`` of
    :data:`DEFECTS` goes to miner ``k + 1``; miners beyond that are clean.
    """
    if miners < 1:
        raise ValueError(f"the demo needs at least one miner, not {miners}")
    if validators < 0:
        raise ValueError(f"validators cannot be negative ({validators})")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), not a naive datetime")
    now = (now or default_now()).astimezone(timezone.utc)
    neurons = demo_neurons(np.random.default_rng([seed, 0xBEEF]), miners, validators)
    miner_neurons = [n for n in neurons if not n.validator_permit]

    drafts = [_draft_miner(i, n.hotkey, seed, now) for i, n in enumerate(miner_neurons)]
    donor = drafts[0].files[0]
    defect_names = list(DEFECTS)
    for k, name in enumerate(defect_names[: miners - 1]):
        miner = drafts[k + 1]
        DEFECTS[name](miner, donor)
        miner.defects.append(name)

    seeded = [
        SeededMiner(n.uid, n.hotkey, d.defects, [_write(store, d.hotkey, f) for f in d.files])
        for n, d in zip(miner_neurons, drafts)
    ]
    block = block_at(now)
    store.put(METAGRAPH_KEY, metagraph_json(neurons, block))
    return SeedReport(
        store_url=store.url,
        seed=seed,
        now=now,
        metagraph_key=METAGRAPH_KEY,
        block=block,
        miners=seeded,
        validators=[n for n in neurons if n.validator_permit],
        unplanted=defect_names[miners - 1 :],
    )


def _draft_miner(index: int, hotkey: str, seed: int, now: datetime) -> MinerDraft:
    """2-3 jobs in distinct zips, 1-2 clean files each; the random stream is the miner's own."""
    miner = MinerDraft(index, hotkey, np.random.default_rng([seed, index]), now)
    places = miner.rng.choice(len(PLACES), size=int(miner.rng.integers(2, 4)), replace=False)
    for p in places:
        for _ in range(int(miner.rng.integers(1, 3))):
            miner.add_file(PLACES[int(p)], rows=int(miner.rng.integers(*ROWS_PER_FILE)))
    return miner


def _write(store: ObjectStore, hotkey: str, draft: FileDraft) -> SeededFile:
    data = draft.to_parquet()
    key = draft.key(hotkey)
    store.put(key, data)
    return SeededFile(key, draft.job_id, draft.table.num_rows, len(data), draft.planted, draft.expected)
