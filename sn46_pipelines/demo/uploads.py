"""A demo miner's uploads before they are written: jobs, files and what was planted in them.

A miner keeps its jobs and its files' sizes from round to round: each file of
a later round re-scrapes about 70 % of the homes its counterpart held the
round before (see :func:`.listings.rescrape`) and fills the rest with new
zpids, as a real miner re-scraping the same zip codes every epoch does.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.listings.keys import upload_key

from .listings import rescrape, synth_listings
from .places import Place

#: Each miner draws its zpids from its own block of this size, so clean miners never collide.
ZPID_BLOCK = 10_000_000
#: Range of the share of a file's rows that re-scrape homes the miner uploaded the round before.
RESCRAPED_SHARE = (0.65, 0.75)


@dataclass(frozen=True, slots=True)
class Timing:
    """When a round's files are written, and how long before that their listings were scraped."""

    #: Files are written between ``earliest`` and ``latest`` before the round's time.
    earliest: timedelta
    latest: timedelta
    #: A file's listings were scraped in this window before the file was written.
    scrape_window: timedelta

    def upload_time(self, rng: np.random.Generator, now: datetime) -> datetime:
        """A random moment in the window, to the second (file names have 1 s resolution)."""
        seconds = int(rng.integers(int(self.latest.total_seconds()), int(self.earliest.total_seconds())))
        return now - timedelta(seconds=seconds)

    @classmethod
    def every(cls, interval: timedelta) -> Timing:
        """Timing for rounds ``interval`` apart: files land in the last quarter interval (30 min at
        most) before the round's time, each scraped in the quarter interval before it, so a round's
        listings are always newer than everything the round before uploaded."""
        lead = min(interval / 4, timedelta(minutes=30))
        return cls(earliest=lead, latest=timedelta(minutes=2), scrape_window=lead)


#: A miner's first upload: files from the last three days, listings scraped over the week before each.
BACKLOG = Timing(earliest=timedelta(hours=72), latest=timedelta(hours=1), scrape_window=timedelta(days=7))


def job_id_for(place: Place) -> str:
    """The SN46 job id for sold listings in a zip."""
    return f"zillow_premium_zip_{place.zip_code}_sold"


@dataclass
class FileDraft:
    """One parquet file a miner is about to upload, with its planted defects."""

    job_id: str
    place: Place
    written_at: datetime
    table: pa.Table
    #: Row count the file name declares, when it differs from the real one.
    declared_rows: int | None = None
    #: Cut the written file short, as an interrupted upload would.
    truncate: bool = False
    #: Defect name -> rows affected (1 for whole-file defects).
    planted: dict[str, int] = field(default_factory=dict)
    #: Reason code -> quarantine entries curation must produce for this miner because of this file.
    expected: dict[str, int] = field(default_factory=dict)
    #: The listings as scraped, before any defect was planted: what the next round re-scrapes.
    observed: pa.Table = field(init=False)

    def __post_init__(self) -> None:
        self.observed = self.table

    def key(self, hotkey: str) -> str:
        rows = self.table.num_rows if self.declared_rows is None else self.declared_rows
        return upload_key(hotkey, self.job_id, self.written_at, rows)

    def to_parquet(self) -> bytes:
        """The file's bytes; identical for identical drafts (parquet embeds no wall-clock time)."""
        sink = io.BytesIO()
        pq.write_table(self.table, sink, compression="snappy")
        data = sink.getvalue()
        return data[: len(data) // 2] if self.truncate else data


@dataclass
class MinerDraft:
    """Everything one demo miner uploads in one round."""

    index: int
    hotkey: str
    rng: np.random.Generator
    #: The round's time: no file is written after it.
    now: datetime
    timing: Timing = BACKLOG
    files: list[FileDraft] = field(default_factory=list)
    #: (place, rows) of each clean file this miner uploads every round.
    slots: list[tuple[Place, int]] = field(default_factory=list)
    #: Job id -> the listings each of the miner's files there held last round, for new files to re-scrape.
    seen: dict[str, list[pa.Table]] = field(default_factory=dict)
    _next_zpid: int = field(init=False)

    def __post_init__(self) -> None:
        self._next_zpid = ZPID_BLOCK * (self.index + 1)

    def new_zpids(self, n: int) -> np.ndarray:
        """``n`` fresh zpids, increasing by random steps so they look scraped, never repeated."""
        zpids = self._next_zpid + np.cumsum(self.rng.integers(1, 2_000, n))
        self._next_zpid = int(zpids[-1]) if n else self._next_zpid
        return zpids

    def upload_time(self) -> datetime:
        """When a file of this round is written (see :class:`Timing`)."""
        return self.timing.upload_time(self.rng, self.now)

    def add_slot(self, place: Place, rows: int) -> FileDraft:
        """A clean file this miner uploads again, re-scraped, in every later round."""
        self.slots.append((place, rows))
        return self.add_file(place, rows)

    def add_file(self, place: Place, rows: int, written_at: datetime | None = None) -> FileDraft:
        """A new clean file in ``place``'s job: fresh listings, or mostly re-scraped ones when the
        miner uploaded a file in this job last round (the files of a job pair up in order)."""
        written_at = written_at or self.upload_time()
        job_id = job_id_for(place)
        earlier = self.seen.get(job_id)
        if earlier:
            table = self._rescrape(earlier.pop(0), place, rows, written_at)
        else:
            zpids = self.new_zpids(rows)
            table = synth_listings(
                self.rng, place, zpids, newest=written_at, window=self.timing.scrape_window
            )
        draft = FileDraft(job_id, place, written_at, table)
        self.files.append(draft)
        return draft

    def _rescrape(self, seen: pa.Table, place: Place, rows: int, written_at: datetime) -> pa.Table:
        """``rows`` listings: about 70 % of ``seen`` scraped again, the rest new zpids, shuffled."""
        again = min(seen.num_rows, round(rows * float(self.rng.uniform(*RESCRAPED_SHARE))))
        picked = np.sort(self.rng.choice(seen.num_rows, size=again, replace=False))
        window = self.timing.scrape_window
        parts = [
            rescrape(self.rng, seen.take(picked), newest=written_at, window=window),
            synth_listings(self.rng, place, self.new_zpids(rows - again), newest=written_at, window=window),
        ]
        return pa.concat_tables(parts).take(self.rng.permutation(rows))

    def next_round(self, rng: np.random.Generator, now: datetime, timing: Timing) -> MinerDraft:
        """This miner one round later: same jobs and file sizes, re-scraping what it uploaded now.

        Only what the miner scraped carries over (:attr:`FileDraft.observed`),
        never a planted defect or a copied row; new zpids continue where this
        round's stopped.
        """
        later = MinerDraft(self.index, self.hotkey, rng, now, timing)
        later._next_zpid = self._next_zpid
        for f in self.files:
            later.seen.setdefault(f.job_id, []).append(f.observed)
        for place, rows in self.slots:
            later.add_slot(place, rows)
        return later
