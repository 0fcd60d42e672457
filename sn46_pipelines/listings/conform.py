"""Bring one uploaded file's columns to the declared types.

Miners write whatever types their pandas inferred, so conversion is tolerant
where nothing can be lost (zpid or zip as integers, ints for floats, naive or
nanosecond timestamps, ISO-8601 strings for ``datetime``) and strict where a
guess could be wrong (a price written as text, an address as a number): those
files are a ``schema_mismatch``. A single value that cannot be converted (2.5
bedrooms, an unparseable date) rejects only its row, as ``implausible_value``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import LISTING_SCHEMA, UPLOAD_SCHEMA

#: String columns that miners also write as integers; zip codes get their leading zeros back.
_INTEGER_TEXT = frozenset({"zpid", "zip_code"})
_INT32_MAX = 2**31 - 1

#: (row within the file, what is wrong with its value)
BadValue = tuple[int, str]


class SchemaMismatchError(ValueError):
    """A column is missing or has a type that cannot safely become the declared one."""


def missing_columns(schema: pa.Schema) -> list[str]:
    """Declared columns absent from ``schema`` (or present more than once, which is as bad)."""
    return [name for name in LISTING_SCHEMA.names if schema.get_field_index(name) < 0]


def conform(table: pa.Table) -> tuple[pa.Table, list[BadValue]]:
    """The declared columns of ``table`` in declared types and order (extra columns are dropped)."""
    if table.schema.equals(LISTING_SCHEMA):  # the usual upload: only the file's metadata to drop
        return pa.Table.from_arrays(table.columns, schema=LISTING_SCHEMA), []
    missing = missing_columns(table.schema)
    if missing:
        raise SchemaMismatchError(f"missing or repeated column(s) {', '.join(missing)}")
    columns, bad = [], []
    for field in LISTING_SCHEMA:
        column, column_bad = _conform_column(field.name, field.type, table.column(field.name))
        columns.append(column)
        bad.extend(column_bad)
    return pa.Table.from_arrays(columns, schema=LISTING_SCHEMA), bad


def conform_values(name: str, values: list) -> tuple[pa.ChunkedArray, list[BadValue]]:
    """Python values (one JSON field of every listing) as column ``name`` of :data:`UPLOAD_SCHEMA`.

    JSON types each value on its own, so a value that cannot take the declared
    type rejects only its row (``implausible_value``), where a parquet column
    of the wrong type is the whole file's ``schema_mismatch``.
    """
    target = UPLOAD_SCHEMA.field(name).type
    try:
        return _conform_column(name, target, pa.chunked_array([pa.array(values)]))
    except (pa.ArrowException, SchemaMismatchError, TypeError, ValueError):
        pass
    converted, bad = [], []
    for row, value in enumerate(values):
        try:
            column, [] = _conform_column(name, target, pa.chunked_array([pa.array([value])]))
            converted.append(column.chunk(0))
        except (pa.ArrowException, SchemaMismatchError, TypeError, ValueError):
            converted.append(pa.nulls(1, target))
            bad.append((row, f"{name} {value!r} is not a {target}"))
    return pa.chunked_array(converted, target), bad


def _conform_column(
    name: str, target: pa.DataType, column: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, list[BadValue]]:
    source = column.type
    if source == target:
        return column, []
    if pa.types.is_null(source):
        return column.cast(target), []
    if pa.types.is_dictionary(source):
        return _conform_column(name, target, column.cast(source.value_type))
    if pa.types.is_string(target):
        if _is_text(source):
            return column.cast(target), []
        if name in _INTEGER_TEXT and pa.types.is_integer(source):
            text = column.cast(target)
            return (pc.utf8_lpad(text, 5, "0") if name == "zip_code" else text), []
    elif pa.types.is_floating(target):
        if pa.types.is_integer(source) or pa.types.is_floating(source) or pa.types.is_decimal(source):
            return column.cast(target, safe=False), []  # ints beyond 2**53 are implausible anyway
    elif pa.types.is_integer(target):
        if pa.types.is_integer(source) or pa.types.is_floating(source):
            return _to_int32(name, column)
    elif pa.types.is_timestamp(target):
        if pa.types.is_timestamp(source) or pa.types.is_date(source):
            return column.cast(target, safe=False), []  # naive means UTC; sub-microseconds are dropped
        if _is_text(source):
            return _parse_datetimes(column, target)
    raise SchemaMismatchError(f"column {name} is {source}, expected {target}")


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _to_int32(name: str, column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, list[BadValue]]:
    """Whole numbers that fit become int32; any other value is nulled and its row reported."""
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    present = ~pc.is_null(column).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) <= _INT32_MAX)
        wrong = present & ~whole
    if not wrong.any():
        return column.cast(pa.int32()), []
    rows = np.flatnonzero(wrong)
    kept = np.where(present & ~wrong, values, 0).astype(np.int32)
    converted = pa.array(kept, pa.int32(), mask=~(present & ~wrong))
    bad = [(int(r), f"{name} {values[r]:g} is not a whole number") for r in rows]
    return pa.chunked_array([converted]), bad


def _parse_datetimes(column: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.ChunkedArray, list[BadValue]]:
    """ISO-8601 text; the fast vectorised cast first, per value only if some text resists it."""
    try:
        return column.cast(target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parsed, bad = [], []
    for row, text in enumerate(column.to_pylist()):
        value = None
        if text is not None:
            try:
                value = datetime.fromisoformat(text.strip())
            except ValueError:
                bad.append((row, f"datetime {text!r} is not an ISO-8601 time"))
            else:
                value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        parsed.append(value)
    return pa.chunked_array([pa.array(parsed, target)]), bad
