"""The defects real miners' uploads show, planted on purpose so curation has something to catch.

Each planter edits one round of one :class:`MinerDraft` (a defect miner gets
its defect again in every round it uploads) and records, on the file it
touched, what it planted (``planted``) and which quarantine entries curation
must produce for it (``expected``, by reason code). Defects that are
legitimate at this stage (copies from another miner, zpid type drift) expect
nothing: later stages or tolerant reading deal with them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow as pa

from .places import PLACES
from .uploads import FileDraft, MinerDraft

Planter = Callable[[MinerDraft, FileDraft], None]


def _pick(miner: MinerDraft, draft: FileDraft, k: int) -> list[int]:
    return sorted(int(i) for i in miner.rng.choice(draft.table.num_rows, size=k, replace=False))


def _edit_rows(draft: FileDraft, rows: list[int], edits: list[dict[str, Any]]) -> None:
    records = draft.table.to_pylist()
    for row, edit in zip(rows, edits, strict=True):
        records[row].update(edit)
    draft.table = pa.Table.from_pylist(records, schema=draft.table.schema)


def _append_rows(draft: FileDraft, records: list[dict[str, Any]]) -> None:
    draft.table = pa.concat_tables([draft.table, pa.Table.from_pylist(records, schema=draft.table.schema)])


def _record(draft: FileDraft, defect: str, rows: int, **expected: int) -> None:
    draft.planted[defect] = draft.planted.get(defect, 0) + rows
    for reason, count in expected.items():
        draft.expected[reason] = draft.expected.get(reason, 0) + count


def plant_duplicates(miner: MinerDraft, donor: FileDraft) -> None:
    """10 rows repeated verbatim in one file, and 8 listings re-uploaded later with a newer scrape time."""
    first = miner.files[0]
    repeated = first.table.take(_pick(miner, first, 10))
    first.table = pa.concat_tables([first.table, repeated])
    _record(first, "duplicates", 10, duplicate=10)

    later_at = min(first.written_at + timedelta(minutes=int(miner.rng.integers(10, 50))), miner.now)
    later = miner.add_file(first.place, rows=150, written_at=later_at)
    relisted = first.table.take(_pick(miner, first, 8)).to_pylist()
    for record in relisted:
        record["datetime"] = later_at - timedelta(minutes=1)
        record["price"] = round(record["price"] * 0.97, -3)
    _append_rows(later, relisted)
    _record(later, "duplicates", 8, duplicate=8)


def plant_copied_rows(miner: MinerDraft, donor: FileDraft) -> None:
    """40 of another miner's rows of the same round, copied verbatim into a later upload for that zip."""
    written_at = min(donor.written_at + timedelta(minutes=int(miner.rng.integers(5, 60))), miner.now)
    draft = miner.add_file(donor.place, rows=80, written_at=written_at)
    _append_rows(draft, donor.table.take(_pick(miner, donor, 40)).to_pylist())
    _record(draft, "copied_rows", 40)


def plant_impossible_values(miner: MinerDraft, donor: FileDraft) -> None:
    """Values no real listing has: a $1 house, 45 bedrooms, a home in London."""
    edits: list[dict[str, Any]] = [
        {"price": 1.0},
        {"price": 9.5e9},
        {"price": -250_000.0},
        {"bedrooms": 45},
        {"bathrooms": -1.0},
        {"living_area": 3.0},
        {"latitude": 0.0, "longitude": 0.0},
        {"latitude": 51.5072, "longitude": -0.1276},
    ]
    draft = miner.files[0]
    _edit_rows(draft, _pick(miner, draft, len(edits)), edits)
    _record(draft, "impossible_values", len(edits), implausible_value=len(edits))


def plant_missing_fields(miner: MinerDraft, donor: FileDraft) -> None:
    """Rows without a zpid, address, price, home type or status (null or blank)."""
    edits: list[dict[str, Any]] = [
        {"zpid": None},
        {"zpid": ""},
        {"address": None},
        {"price": None},
        {"home_type": None},
        {"home_status": "  "},
    ]
    draft = miner.files[0]
    _edit_rows(draft, _pick(miner, draft, len(edits)), edits)
    _record(draft, "missing_fields", len(edits), missing_required=len(edits))


def plant_zip_mismatch(miner: MinerDraft, donor: FileDraft) -> None:
    """10 listings from another zip, uploaded under a job for this one."""
    draft = miner.files[0]
    elsewhere = next(p for p in PLACES if p.zip_code != draft.place.zip_code)
    where = f"{elsewhere.city}, {elsewhere.state} {elsewhere.zip_code}"
    rows = _pick(miner, draft, 10)
    addresses = draft.table.column("address").to_pylist()
    edits = [
        {
            "zip_code": elsewhere.zip_code,
            "city": elsewhere.city,
            "state": elsewhere.state,
            "latitude": elsewhere.latitude,
            "longitude": elsewhere.longitude,
            "address": f"{addresses[r].split(',')[0]}, {where}",
        }
        for r in rows
    ]
    _edit_rows(draft, rows, edits)
    _record(draft, "zip_mismatch", len(rows), zip_mismatch=len(rows))


def plant_stale_dates(miner: MinerDraft, donor: FileDraft) -> None:
    """12 rows scraped 40-120 days ago and 4 dated days in the future."""
    draft = miner.files[0]
    rows = _pick(miner, draft, 16)
    stale = [{"datetime": miner.now - timedelta(days=float(miner.rng.uniform(40, 120)))} for _ in range(12)]
    future = [{"datetime": miner.now + timedelta(days=float(miner.rng.uniform(2, 5)))} for _ in range(4)]
    _edit_rows(draft, rows, stale + future)
    _record(draft, "stale_dates", 16, stale=12, future_date=4)


def plant_truncated_file(miner: MinerDraft, donor: FileDraft) -> None:
    """An upload cut off halfway: not a readable parquet file."""
    draft = miner.add_file(miner.files[0].place, rows=250)
    draft.truncate = True
    _record(draft, "truncated_file", 1, unreadable_file=1)


def plant_wrong_schema(miner: MinerDraft, donor: FileDraft) -> None:
    """A file written by an old scraper: camelCase names and no home_status column."""
    draft = miner.add_file(miner.files[0].place, rows=200)
    renamed = {"living_area": "livingArea", "zip_code": "zipcode", "days_on_zillow": "daysOnZillow"}
    table = draft.table.drop_columns(["home_status"])
    draft.table = table.rename_columns([renamed.get(name, name) for name in table.column_names])
    _record(draft, "wrong_schema", 1, schema_mismatch=1)


def plant_zpid_type_drift(miner: MinerDraft, donor: FileDraft) -> None:
    """zpid written as an integer in one file and a string in the others (tolerated, nothing lost)."""
    draft = miner.files[0]
    index = draft.table.schema.get_field_index("zpid")
    draft.table = draft.table.set_column(index, "zpid", draft.table.column("zpid").cast(pa.int64()))
    _record(draft, "zpid_type_drift", draft.table.num_rows)


def plant_filename_row_mismatch(miner: MinerDraft, donor: FileDraft) -> None:
    """A file whose name claims 7 more rows than it holds."""
    draft = miner.files[0]
    draft.declared_rows = draft.table.num_rows + 7
    _record(draft, "filename_row_mismatch", 1, filename_row_mismatch=1)


#: Defect name -> planter, in the order they are handed to miners 1, 2, ... (miner 0 stays clean).
DEFECTS: dict[str, Planter] = {
    "duplicates": plant_duplicates,
    "copied_rows": plant_copied_rows,
    "impossible_values": plant_impossible_values,
    "missing_fields": plant_missing_fields,
    "zip_mismatch": plant_zip_mismatch,
    "stale_dates": plant_stale_dates,
    "truncated_file": plant_truncated_file,
    "wrong_schema": plant_wrong_schema,
    "zpid_type_drift": plant_zpid_type_drift,
    "filename_row_mismatch": plant_filename_row_mismatch,
}
