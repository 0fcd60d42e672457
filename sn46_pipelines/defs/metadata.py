"""How the assets' numbers, times, store keys and tables look in the Dagster UI.

The libraries report plain values (they import no Dagster); this module gives
each the metadata type that makes it readable and plottable: floats rounded,
ISO times as timestamps, store keys as paths, Arrow tables as row counts and
column schemas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg
import pyarrow as pa

#: Significant decimals kept of a float (rates, MAPEs, seconds): more is noise on a chart.
DECIMALS = 4
#: Metadata names whose string values are object-store keys or prefixes.
STORE_KEY_NAMES = frozenset({"key", "prefix", "listings_key", "quarantine_key", "views_key"})


def metadata_int(value: dg.MetadataValue | None) -> int | None:
    """An integer metadata value as ``int`` (``None``: absent); any other kind is a wiring bug."""
    if value is None:
        return None
    number = value.value
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise TypeError(f"expected an integer metadata value, got {type(value).__name__} {number!r}")
    return int(number)


def newest_metadata_int(instance: dg.DagsterInstance, key: dg.AssetKey, name: str) -> int | None:
    """``name`` from the newest materialization of ``key``; ``None``: never materialized, or absent."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    return metadata_int(materialization.metadata.get(name)) if materialization else None


def ui_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Each plain value as the metadata type it reads best as; ``None`` values are left out."""
    return {name: _value(name, value) for name, value in values.items() if value is not None}


def _value(name: str, value: Any) -> Any:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, datetime):
        return dg.MetadataValue.timestamp(value)
    if isinstance(value, str):
        if name in STORE_KEY_NAMES:
            return dg.MetadataValue.path(value)
        if "://" in value and " " not in value:
            return dg.MetadataValue.url(value)
        moment = _iso_time(value)
        return dg.MetadataValue.timestamp(moment) if moment else value
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return value


def rounded(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata another process reported (Pipes), its floats rounded to :data:`DECIMALS` places."""
    result = {}
    for name, value in metadata.items():
        if isinstance(value, dg.FloatMetadataValue) and value.value is not None:
            value = round(value.value, DECIMALS)
        elif isinstance(value, float):
            value = round(value, DECIMALS)
        result[name] = value
    return result


def _iso_time(text: str) -> datetime | None:
    """An ISO 8601 time with a zone (``2026-12-03T08:00:00+00:00``), else None."""
    if len(text) < 19 or text[4:5] != "-" or text[10:11] != "T":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """An Arrow schema as Dagster's ``dagster/column_schema``."""
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), constraints=_nullable(f)) for f in schema]
    )


def _nullable(field: pa.Field) -> dg.TableColumnConstraints:
    return dg.TableColumnConstraints(nullable=field.nullable)


def table_metadata(rows: int, schema: pa.Schema) -> dict[str, Any]:
    """The standard row count and column schema of a table asset."""
    return {"dagster/row_count": rows, "dagster/column_schema": column_schema(schema)}


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dg.MetadataValue:
    """A small table as Markdown metadata (readable in the asset's materialization panel)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{DECIMALS}g}"
    return str(value).replace("|", "\\|")
