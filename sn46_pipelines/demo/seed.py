"""``seed_demo``: write a small, realistic SN46 upload area with known defects into a store.

Everything is derived from ``seed``, ``now``, ``rounds`` and ``interval``, so
the same arguments give byte-identical files under identical keys: tests can
assert exact outcomes and re-seeding overwrites instead of piling up. ``now``
defaults to today's UTC midnight (not the current second) so re-running the
same day is still identical, while the listings stay inside the 30-day
freshness window.

Several rounds show the steady state validators live in: every ``interval``
the same miners upload again, about 70 % of each file the homes it held the
round before (a new scrape time, sometimes a revised price or status) and
30 % new ones; a few miners join late and one or two stop. A round's
objects are written after the round before's, and within a round in miner
order, so object times (what decides who uploaded a listing first) follow
the rounds even though one call writes them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sn46_pipelines.objectstore import ObjectStore

from ..listings.layout import METAGRAPH_KEY
from .defects import DEFECTS
from .identities import Neuron, block_at, demo_neurons, metagraph_json
from .places import PLACES
from .uploads import BACKLOG, FileDraft, MinerDraft, Timing

DEFAULT_MINERS = 12
DEFAULT_VALIDATORS = 3
#: Rows per clean file: a few hundred keeps the whole demo seed to about a second.
ROWS_PER_FILE = (200, 400)
DEFAULT_INTERVAL = timedelta(hours=2)
#: Closest two rounds may be: a round's files land in the quarter interval before its time.
MIN_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SeededFile:
    key: str
    job_id: str
    #: The upload round the file belongs to (0 is the first).
    round: int
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
        """Quarantine entries by reason code that curating all of this miner's files must produce."""
        return _expected(self.files)

    def expected_in(self, round_index: int) -> dict[str, int]:
        """Quarantine entries by reason code that curating this miner's files of one round must produce."""
        return _expected(f for f in self.files if f.round == round_index)

    def rounds(self) -> list[int]:
        """The rounds this miner uploaded in, oldest first."""
        return sorted({f.round for f in self.files})


def _expected(files: Iterable[SeededFile]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for f in files:
        for reason, count in f.expected.items():
            totals[reason] = totals.get(reason, 0) + count
    return totals


@dataclass(frozen=True, slots=True)
class SeededRound:
    """One upload round: its time and which miners (by hotkey) uploaded, joined and left."""

    index: int
    at: datetime
    uploaded: list[str]
    #: Miners whose first upload is this round (none in round 0: its uploaders are where the demo starts).
    joined: list[str]
    #: Miners that uploaded in the round before and never again.
    left: list[str]


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What was written, and which miner carries which defect."""

    store_url: str
    seed: int
    #: The last round's time.
    now: datetime
    metagraph_key: str
    block: int
    miners: list[SeededMiner]
    validators: list[Neuron]
    #: Defects that did not fit (one miner each, after the clean miner 0).
    unplanted: list[str]
    interval: timedelta
    #: Rounds the demo has; :attr:`rounds` are the ones written (one of them with ``only_round``).
    round_count: int
    rounds: list[SeededRound]

    @property
    def files(self) -> list[SeededFile]:
        return [f for m in self.miners for f in m.files]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["now"] = self.now.isoformat()
        doc["interval"] = self.interval.total_seconds()
        for written, out in zip(self.rounds, doc["rounds"], strict=True):
            out["at"] = written.at.isoformat()
        for miner, out in zip(self.miners, doc["miners"], strict=True):
            out["expected"] = miner.expected
        return doc

    def summary(self) -> str:
        """A few lines for humans: where, how much, who got which defect, who came and went when."""
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
        if self.round_count > 1:
            uids = {m.hotkey: m.uid for m in self.miners}
            for r in self.rounds:
                churn = [f"uid {uids[h]} joined" for h in r.joined] + [f"uid {uids[h]} left" for h in r.left]
                lines.append(
                    f"round {r.index + 1}/{self.round_count} at {r.at.isoformat()}: "
                    f"{len(r.uploaded)} miners uploaded" + "".join(f", {c}" for c in churn)
                )
        return "\n".join(lines)


def default_now() -> datetime:
    """Today's UTC midnight: the demo's reference time unless one is given."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def seed_demo(
    store: ObjectStore,
    *,
    miners: int = DEFAULT_MINERS,
    validators: int = DEFAULT_VALIDATORS,
    seed: int = 0,
    now: datetime | None = None,
    rounds: int = 1,
    interval: timedelta = DEFAULT_INTERVAL,
    only_round: int | None = None,
) -> SeedReport:
    """Write ``rounds`` rounds of demo uploads, ``interval`` apart and the last at ``now``, and a
    metagraph snapshot; return what was written and planted.

    Miner 0 is always clean, uploads in every round and is the donor others
    copy from; defect ``k`` of :data:`DEFECTS` goes to miner ``k + 1``, in
    every round that miner uploads; miners beyond that are clean. With two or
    more rounds a few miners join late and one or two leave early (see
    :func:`_spans`). ``only_round`` writes that round alone (the rounds before
    it are drafted, not written), so rounds can land one at a time with a
    pipeline pass in between; the metagraph's block is then that round's.
    """
    if miners < 1:
        raise ValueError(f"the demo needs at least one miner, not {miners}")
    if validators < 0:
        raise ValueError(f"validators cannot be negative ({validators})")
    if rounds < 1:
        raise ValueError(f"the demo needs at least one round, not {rounds}")
    if interval < MIN_INTERVAL:
        raise ValueError(f"rounds must be at least {MIN_INTERVAL} apart, not {interval}")
    if only_round is not None and not 0 <= only_round < rounds:
        raise ValueError(f"only_round must be a round of 0..{rounds - 1}, not {only_round}")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), not a naive datetime")
    now = (now or default_now()).astimezone(UTC)
    neurons = demo_neurons(np.random.default_rng([seed, 0xBEEF]), miners, validators)
    miner_neurons = [n for n in neurons if not n.validator_permit]
    hotkeys = [n.hotkey for n in miner_neurons]
    defect_names = list(DEFECTS)
    defect_of = {k + 1: name for k, name in enumerate(defect_names[: miners - 1])}
    spans = _spans(seed, miners, len(defect_of), rounds)
    times = [now - (rounds - 1 - r) * interval for r in range(rounds)]
    to_write = range(rounds) if only_round is None else range(only_round, only_round + 1)

    files: list[list[SeededFile]] = [[] for _ in miner_neurons]
    written: list[SeededRound] = []
    drafts: dict[int, MinerDraft] = {}
    for r in range(to_write.stop):
        drafts = _draft_round(r, drafts, hotkeys, spans, defect_of, seed, times[r], interval)
        if r in to_write:
            for i, draft in drafts.items():  # miner order: a copier's objects land after the donor's
                files[i].extend(_write(store, draft.hotkey, f, r) for f in draft.files)
            written.append(
                SeededRound(
                    index=r,
                    at=times[r],
                    uploaded=[hotkeys[i] for i in drafts],
                    joined=[hotkeys[i] for i, span in enumerate(spans) if r > 0 and span.start == r],
                    left=[hotkeys[i] for i, span in enumerate(spans) if span.stop == r],
                )
            )
    block = block_at(times[to_write.stop - 1])
    store.put(METAGRAPH_KEY, metagraph_json(neurons, block))
    return SeedReport(
        store_url=store.url,
        seed=seed,
        now=now,
        metagraph_key=METAGRAPH_KEY,
        block=block,
        miners=[
            SeededMiner(n.uid, n.hotkey, [defect_of[i]] if i in defect_of else [], files[i])
            for i, n in enumerate(miner_neurons)
        ],
        validators=[n for n in neurons if n.validator_permit],
        unplanted=defect_names[miners - 1 :],
        interval=interval,
        round_count=rounds,
        rounds=written,
    )


def _spans(seed: int, miners: int, defective: int, rounds: int) -> list[range]:
    """The rounds each miner uploads in: every round, but with two rounds or more a sixth of the
    miners join late (their first upload in a round from 1 on) and a twelfth, at least one each,
    stop after a round before the last.

    Miner 0, the donor, never churns. Leavers are drawn from the clean miners
    first, so an honest miner's score can be watched to decay; joiners from
    whoever is left. Miners ``1..defective`` carry the defects.
    """
    spans = [range(rounds)] * miners
    if rounds < 2:
        return spans
    rng = np.random.default_rng([seed, 0xC0DE])
    candidates = [int(i) for i in rng.permutation(np.arange(defective + 1, miners))]
    candidates += [int(i) for i in rng.permutation(np.arange(1, defective + 1))]
    leaving = min(max(1, round(miners / 12)), len(candidates) // 2)
    joining = min(max(1, round(miners / 6)), len(candidates) - leaving)
    for i in candidates[:leaving]:
        spans[i] = range(int(rng.integers(0, rounds - 1)) + 1)
    for i in candidates[leaving : leaving + joining]:
        spans[i] = range(int(rng.integers(1, rounds)), rounds)
    return spans


def _draft_round(
    r: int,
    previous: dict[int, MinerDraft],
    hotkeys: list[str],
    spans: list[range],
    defect_of: dict[int, str],
    seed: int,
    at: datetime,
    interval: timedelta,
) -> dict[int, MinerDraft]:
    """Round ``r``'s uploads, by miner index, defects planted.

    Round 0 is each miner's backlog (files from the three days before it); a
    miner that uploaded in round ``r - 1`` re-scrapes its files; one that joins
    now scrapes fresh listings. Every (miner, round) has its own random stream.
    """
    timing = Timing.every(interval)
    drafts: dict[int, MinerDraft] = {}
    for i, hotkey in enumerate(hotkeys):
        if r not in spans[i]:
            continue
        if r == 0:
            drafts[i] = _draft_miner(i, hotkey, np.random.default_rng([seed, i]), at, BACKLOG)
        elif i in previous:
            drafts[i] = previous[i].next_round(np.random.default_rng([seed, i, r]), at, timing)
        else:
            drafts[i] = _draft_miner(i, hotkey, np.random.default_rng([seed, i, r]), at, timing)
    donor = drafts[0].files[0]
    for i, name in defect_of.items():
        if i in drafts:
            DEFECTS[name](drafts[i], donor)
    return drafts


def _draft_miner(
    index: int, hotkey: str, rng: np.random.Generator, now: datetime, timing: Timing
) -> MinerDraft:
    """2-3 jobs in distinct zips, 1-2 clean files each, the miner's first upload."""
    miner = MinerDraft(index, hotkey, rng, now, timing)
    places = miner.rng.choice(len(PLACES), size=int(miner.rng.integers(2, 4)), replace=False)
    for p in places:
        for _ in range(int(miner.rng.integers(1, 3))):
            miner.add_slot(PLACES[int(p)], rows=int(miner.rng.integers(*ROWS_PER_FILE)))
    return miner


def _write(store: ObjectStore, hotkey: str, draft: FileDraft, round_index: int) -> SeededFile:
    data = draft.to_parquet()
    key = draft.key(hotkey)
    store.put(key, data)
    return SeededFile(
        key, draft.job_id, round_index, draft.table.num_rows, len(data), draft.planted, draft.expected
    )
