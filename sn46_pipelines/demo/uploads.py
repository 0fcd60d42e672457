"""A demo miner's uploads before they are written: jobs, files and what was planted in them."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.listings.keys import upload_key

from .listings import synth_listings
from .places import Place

#: Each miner draws its zpids from its own block of this size, so clean miners never collide.
ZPID_BLOCK = 10_000_000


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
    """Everything one demo miner uploads."""

    index: int
    hotkey: str
    rng: np.random.Generator
    now: datetime
    files: list[FileDraft] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    _next_zpid: int = field(init=False)

    def __post_init__(self) -> None:
        self._next_zpid = ZPID_BLOCK * (self.index + 1)

    def new_zpids(self, n: int) -> np.ndarray:
        """``n`` fresh zpids, increasing by random steps so they look scraped, never repeated."""
        zpids = self._next_zpid + np.cumsum(self.rng.integers(1, 2_000, n))
        self._next_zpid = int(zpids[-1]) if n else self._next_zpid
        return zpids

    def upload_time(self) -> datetime:
        """A random moment in the last three days, to the second (file names have 1 s resolution)."""
        return self.now - timedelta(seconds=int(self.rng.integers(3_600, 72 * 3_600)))

    def add_file(self, place: Place, rows: int, written_at: datetime | None = None) -> FileDraft:
        """A new clean file of fresh listings in ``place``'s job."""
        written_at = written_at or self.upload_time()
        table = synth_listings(self.rng, place, self.new_zpids(rows), newest=written_at)
        draft = FileDraft(job_id_for(place), place, written_at, table)
        self.files.append(draft)
        return draft
