"""Row rules: a failing row is quarantined with its reason, the good rows of its file are kept.

All rules run vectorised over every new row of a hotkey at once, and the
rejected rows' details are built as Arrow strings too, so a file with many
bad rows costs no Python loop. A row gets the first reason that applies, in
this order: a value that could not take its declared type,
``missing_required``, ``implausible_value``, ``zip_mismatch``,
``future_date``, ``stale``. (``duplicate`` is decided afterwards, among the
rows that pass these.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .conform import BadValue
from .rules import REASONS, Reason, Rules
from .schema import REQUIRED_VALUES

#: Given the rejected rows' positions, one detail string per row.
Describe = Callable[[np.ndarray], pa.Array]


@dataclass(frozen=True, slots=True)
class RowVerdicts:
    """Which rows a set of rules rejected, why, and in words."""

    #: Positions of rejected rows, ascending.
    rows: np.ndarray
    #: Index into :data:`REASONS` for each rejected row.
    reasons: np.ndarray
    details: pa.Array

    def accepted_mask(self, n: int) -> np.ndarray:
        mask = np.ones(n, dtype=bool)
        mask[self.rows] = False
        return mask

    @classmethod
    def concat(cls, parts: Sequence[tuple[int, RowVerdicts]]) -> RowVerdicts:
        """One verdict over consecutive batches, given each batch's first row position."""
        if not parts:
            return _NO_REJECTIONS
        return cls(
            np.concatenate([verdicts.rows + start for start, verdicts in parts]),
            np.concatenate([verdicts.reasons for _, verdicts in parts]),
            pa.concat_arrays([verdicts.details for _, verdicts in parts]),
        )


_NO_REJECTIONS = RowVerdicts(
    np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8), pa.array([], pa.string())
)


def check_rows(
    table: pa.Table,
    file_of_row: np.ndarray,
    job_zips: Sequence[str | None],
    bad_values: Sequence[BadValue],
    rules: Rules,
    now: datetime,
) -> RowVerdicts:
    """Apply the row rules to ``table`` (declared schema).

    ``file_of_row[i]`` indexes ``job_zips``, the zip each file's job names (or
    None); ``bad_values`` are (row, detail) pairs from type conversion.
    """
    n = table.num_rows
    reason = np.full(n, -1, dtype=np.int8)
    flagged: list[np.ndarray] = []
    details: list[pa.Array] = []

    def apply(code: Reason, mask: np.ndarray, describe: Describe) -> None:
        fresh = np.flatnonzero(mask & (reason < 0))
        if fresh.size:
            reason[fresh] = REASONS.index(code)
            flagged.append(fresh)
            details.append(describe(fresh))

    if bad_values:
        texts = dict(bad_values)
        mask = np.zeros(n, dtype=bool)
        mask[list(texts)] = True
        apply(Reason.IMPLAUSIBLE_VALUE, mask, lambda idx: pa.array([texts[int(i)] for i in idx], pa.string()))

    for name in REQUIRED_VALUES:
        apply(Reason.MISSING_REQUIRED, _missing(table.column(name)), _constant(f"{name} is missing or blank"))

    for name, (low, high) in rules.ranges().items():
        values = _floats(table.column(name))
        with np.errstate(invalid="ignore"):
            outside = (values < low) | (values > high)
        describe = _text(f"{name} ", values, f" outside {low:.15g}..{high:.15g}")
        apply(Reason.IMPLAUSIBLE_VALUE, outside, describe)

    lat, lon = _floats(table.column("latitude")), _floats(table.column("longitude"))
    apply(
        Reason.IMPLAUSIBLE_VALUE,
        _outside_regions(lat, lon, rules.us_regions),
        _text("latitude ", lat, ", longitude ", lon, " is not in the US"),
    )

    # Zip checks run on the distinct zip values (a few hundred), not on every row.
    codes, zips = _encode(table.column("zip_code"))
    well_formed = np.array([len(z) == 5 and z.isascii() and z.isdigit() for z in zips] + [True])
    shown = np.array([repr(z) for z in zips] + ["missing"], dtype=object)
    apply(Reason.ZIP_MISMATCH, ~well_formed[codes], _text("zip_code ", shown[codes], " is not a 5-digit zip"))
    position = {z: i for i, z in enumerate(zips)}
    # per file: the code its rows must carry, -1 when the job names no zip, -2 when no row can match
    wanted_by_file = [-1 if z is None else position.get(z, -2) for z in job_zips]
    wanted = np.array(wanted_by_file, dtype=np.int64)[file_of_row]
    job_zip = np.array(list(job_zips), dtype=object)[file_of_row]
    apply(
        Reason.ZIP_MISMATCH,
        (wanted != -1) & (codes != wanted),
        _text("zip_code ", shown[codes], " but the job is for ", job_zip),
    )

    stamps = _micros(table.column("datetime"))
    now_us = int(now.timestamp() * 1e6)
    latest = now_us + int(rules.clock_skew.total_seconds() * 1e6)
    oldest = now_us - int(rules.freshness.total_seconds() * 1e6)
    dates = table.column("datetime")
    apply(Reason.FUTURE_DATE, stamps > latest, _dated(dates, f"is after now ({now.isoformat()})"))
    window = _span(rules.freshness)
    apply(Reason.STALE, stamps < oldest, _dated(dates, f"is older than the {window} freshness window"))

    if not flagged:
        return _NO_REJECTIONS
    rows = np.concatenate(flagged)
    order = np.argsort(rows, kind="stable")
    return RowVerdicts(rows[order], reason[rows[order]], pa.concat_arrays(details).take(order))


def _true(mask: pa.ChunkedArray) -> np.ndarray:
    """A boolean result as numpy, null counting as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes per row (null -> ``len(values)``) and the distinct values."""
    encoded = pc.dictionary_encode(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    values = encoded.dictionary.to_pylist()
    codes = pc.fill_null(encoded.indices, len(values)).to_numpy(zero_copy_only=False)
    return codes, values


def _missing(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(column.type):  # byte length reads offsets only; is_space stops at the first letter
        blank = pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column))
        return _true(pc.or_kleene(pc.is_null(column), blank))
    if pa.types.is_floating(column.type):
        return _true(pc.is_null(column, nan_is_null=True))
    return _true(pc.is_null(column))


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """Values as float64, null as NaN (NaN passes range checks: absent optional values are fine)."""
    return pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as int64 microseconds; nulls (already rejected as missing) read as 0."""
    return pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)


def _outside_regions(lat: np.ndarray, lon: np.ndarray, regions) -> np.ndarray:
    inside = np.isnan(lat) | np.isnan(lon)
    for south, north, west, east in regions:
        inside |= (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)
    return ~inside


def _constant(text: str) -> Describe:
    return lambda idx: pa.repeat(pa.scalar(text), len(idx))


def _text(*parts: str | np.ndarray) -> Describe:
    """Details joined from literal text and per-row values (numbers print as Arrow prints them)."""

    def describe(idx: np.ndarray) -> pa.Array:
        pieces = [part if isinstance(part, str) else _as_text(part[idx]) for part in parts]
        return pc.binary_join_element_wise(*pieces, "")

    return describe


def _as_text(values: np.ndarray) -> pa.Array:
    return pc.fill_null(pa.array(values).cast(pa.string()), "missing")


def _span(span: timedelta) -> str:
    """``30 days``, ``36 hours``: a window in its largest whole unit."""
    seconds = int(span.total_seconds())
    units = (("day", 86_400), ("hour", 3_600), ("minute", 60))
    unit, size = next(((unit, size) for unit, size in units if seconds % size == 0), ("second", 1))
    count = seconds // size
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _dated(column: pa.ChunkedArray, text: str) -> Describe:
    return lambda idx: pc.strftime(column.take(idx), "datetime %Y-%m-%dT%H:%M:%SZ " + text).combine_chunks()
