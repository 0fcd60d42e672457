"""The committed curated data of every hotkey, as Arrow datasets DuckDB can scan.

Aggregates, views and ``sn46 query`` all read the curated area through this
module, so they agree on what "committed" means: only the files a hotkey's
``manifest.json`` names. Other parquet files in a hotkey's folder may be a
crashed run's leftovers and are never read. Files are read in place through
the store's Arrow filesystem (a folder or S3), never through DuckDB's httpfs,
which cannot be installed offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import SN46Error
from ..metagraph import registered_hotkeys
from ..objectstore import ObjectStore
from .ingest import HotkeyManifest, read_manifest

# REJECTED_AGGREGATES_PREFIX is imported from here by infra.bucket.
from .layout import (
    CURATED_ROOT,
    HOTKEY_FOLDER,
    REJECTED_AGGREGATES_PREFIX,  # noqa: F401
    aggregate_key,
)
from .schema import CURATED_SCHEMA, EPOCH_SCHEMA, QUARANTINE_SCHEMA, TIMESTAMP

#: Rows read per hotkey, job and ingest run (the manifests' ``runs``): what a miner submitted.
SUBMISSIONS_SCHEMA = pa.schema(
    [
        pa.field("hotkey", pa.string(), nullable=False),
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
        pa.field("rows_in", pa.int64(), nullable=False),
    ]
)
#: Columns of curated and quarantine files that may be absent (written before the column existed):
#: read as null.
OPTIONAL_COLUMNS = frozenset({"ingested_at", *EPOCH_SCHEMA.names})


class CuratedDataError(SN46Error, ValueError):
    """Committed data cannot be read: a curated or aggregate file is missing, or has the wrong schema."""


@dataclass(frozen=True, slots=True)
class CuratedSources:
    """Every committed hotkey and its curated listings and quarantine, ready to scan."""

    #: hotkey -> the listings file its manifest names (what "current" means for views).
    listings_keys: dict[str, str | None]
    listings: ds.Dataset
    quarantine: ds.Dataset
    #: Rows each committed run read (:data:`SUBMISSIONS_SCHEMA`).
    submissions: pa.Table
    #: hotkey -> rows in its committed listings file (what ingest committed, whatever their age).
    curated_rows: dict[str, int]
    #: Committed hotkeys the metagraph snapshot no longer lists: left out of everything above.
    inactive: tuple[str, ...] = ()

    @property
    def hotkeys(self) -> list[str]:
        return list(self.listings_keys)

    def committed(self) -> pa.Table:
        """One row per committed hotkey with its listings file and row count, for DuckDB to join on."""
        hotkeys = list(self.listings_keys)
        return pa.table(
            {
                "hotkey": pa.array(hotkeys, pa.string()),
                "listings_key": pa.array(list(self.listings_keys.values()), pa.string()),
                "curated_rows": pa.array([self.curated_rows.get(h, 0) for h in hotkeys], pa.int64()),
            }
        )


def _hotkey_folders(store: ObjectStore) -> list[str]:
    """Hotkeys with a curated folder, sorted; a folder may hold no manifest (nothing committed yet)."""
    return sorted(
        prefix.removeprefix(CURATED_ROOT + HOTKEY_FOLDER).rstrip("/")
        for prefix in store.list_prefixes(CURATED_ROOT)
        if prefix.startswith(CURATED_ROOT + HOTKEY_FOLDER)
    )


def curated_sources(store: ObjectStore) -> CuratedSources:
    """The committed curated listings and quarantine of every registered hotkey with a manifest.

    Registered means listed by the data store's metagraph snapshot (every
    hotkey, when there is none): a miner that left the subnet gets no score
    and its rows serve no one, but its files stay where they are for audit.

    Each file's footer is checked against the declared schema up front: a
    dataset with an explicit schema would otherwise fill a missing column
    with nulls and quietly skew every rate computed from it.
    """
    listings_keys: dict[str, str | None] = {}
    listings: list[str] = []
    quarantine: list[str] = []
    manifests: list[HotkeyManifest] = []
    registered = registered_hotkeys(store)
    inactive: list[str] = []
    for hotkey in _hotkey_folders(store):
        if registered is not None and hotkey not in registered:
            inactive.append(hotkey)
            continue
        manifest = read_manifest(store, hotkey)
        if manifest.etag is None:  # a folder with leftovers but no commit yet
            continue
        manifests.append(manifest)
        listings_keys[hotkey] = manifest.listings_key
        if manifest.listings_key:
            listings.append(manifest.listings_key)
        if manifest.quarantine_key:
            quarantine.append(manifest.quarantine_key)
    filesystem, base = store.arrow_filesystem()
    listings_data, rows = _dataset(store, filesystem, base, listings, CURATED_SCHEMA)
    by_file = dict(zip(listings, rows, strict=True))
    return CuratedSources(
        listings_keys=listings_keys,
        listings=listings_data,
        quarantine=_dataset(store, filesystem, base, quarantine, QUARANTINE_SCHEMA)[0],
        submissions=_submissions(manifests),
        curated_rows={h: by_file[k] for h, k in listings_keys.items() if k is not None},
        inactive=tuple(inactive),
    )


def _submissions(manifests: list[HotkeyManifest]) -> pa.Table:
    rows = [
        {"hotkey": m.hotkey, "job_id": job, "ingested_at": run.at, "rows_in": count}
        for m in manifests
        for run in m.runs or []
        for job, count in run.rows_in.items()
    ]
    return pa.Table.from_pylist(rows, schema=SUBMISSIONS_SCHEMA)


def read_aggregate(store: ObjectStore, name: str) -> ds.Dataset:
    """One aggregate table written by ``listing_aggregates``, as a dataset read in place."""
    filesystem, base = store.arrow_filesystem()
    key = aggregate_key(name)
    try:
        return ds.dataset(f"{base}/{key}", filesystem=filesystem, format="parquet")
    except FileNotFoundError:
        raise CuratedDataError(
            f"{store.url}: no {key}; materialize listing_aggregates first (sn46 pipeline run)"
        ) from None


def _dataset(
    store: ObjectStore, filesystem, base: str, keys: list[str], schema: pa.Schema
) -> tuple[ds.Dataset, list[int]]:
    """The files ``keys`` as one dataset of ``schema``, and each file's row count (from its footer)."""
    if not keys:
        return ds.dataset(schema.empty_table()), []
    try:
        dataset = ds.dataset([f"{base}/{k}" for k in keys], filesystem=filesystem, format="parquet")
    except FileNotFoundError as exc:
        raise CuratedDataError(
            f"{store.url}: a manifest names a curated file that is missing: {exc}"
        ) from None
    rows = []
    for key, fragment in zip(keys, dataset.get_fragments(), strict=True):
        _check_schema(store, key, fragment.physical_schema, schema)
        rows.append(fragment.metadata.num_rows)
    return ds.dataset(dataset.files, filesystem=filesystem, format="parquet", schema=schema), rows


def _check_schema(store: ObjectStore, key: str, actual: pa.Schema, declared: pa.Schema) -> None:
    wrong = []
    for field in declared:
        index = actual.get_field_index(field.name)
        if index < 0:
            if field.name not in OPTIONAL_COLUMNS:
                wrong.append(f"{field.name} missing")
        elif not _compatible(actual.field(index).type, field.type):
            wrong.append(f"{field.name} is {actual.field(index).type}, expected {field.type}")
    if wrong:
        raise CuratedDataError(f"{store.url}/{key}: not a curated file: {'; '.join(wrong)}")


def _compatible(actual: pa.DataType, declared: pa.DataType) -> bool:
    """Same type, allowing plain strings where a dictionary of strings is declared (and back)."""

    def plain(t: pa.DataType) -> pa.DataType:
        return t.value_type if pa.types.is_dictionary(t) else t

    return plain(actual) == plain(declared)
