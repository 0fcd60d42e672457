"""File checks: a file that fails one is quarantined whole, with the first reason found.

Checks run cheapest first (name, then size from the listing, then the
parquet footer, or the JSON document's own fields) so a bad upload costs as
little as possible. The object is
fetched whole (or, if large, downloaded to a temporary file) before parsing,
so a network error surfaces as an :class:`ObjectStoreError` and is retried,
never mistaken for an unreadable file and quarantined. Nothing is ever
written to or deleted from the upload area.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.objectstore import ObjectInfo, ObjectStore

from .conform import BadValue, SchemaMismatchError, conform, missing_columns
from .documents import DocumentRejectedError, read_document
from .keys import JSON, InvalidUploadKeyError, UploadKey, parse_upload_key
from .rules import Reason, Rules
from .schema import COLUMNS, EPOCH_SCHEMA, UPLOAD_SCHEMA

#: Files up to this size are parsed from memory; larger ones from a temporary local copy.
IN_MEMORY_LIMIT = 64 * 1024 * 1024


class FileRejectedError(Exception):
    """A file check failed; ``reason`` is the quarantine reason code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class LoadedUpload:
    """A file that passed every file check, its rows in declared types (:data:`UPLOAD_SCHEMA`)."""

    info: ObjectInfo
    key: UploadKey
    table: pa.Table
    #: Rows whose value could not take its declared type (row-level ``implausible_value``).
    bad_values: list[BadValue]
    #: SHA-256 of the bytes: the same upload under a second name is recognised and counted once.
    digest: str


def load_upload(store: ObjectStore, info: ObjectInfo, rules: Rules) -> LoadedUpload:
    """Run the file checks on one upload and read it; :class:`FileRejectedError` says why not.

    Store failures (including the object vanishing) propagate as ``ObjectStoreError``.
    """
    try:
        key = parse_upload_key(info.key)
    except InvalidUploadKeyError as exc:
        raise FileRejectedError(Reason.FILENAME_ROW_MISMATCH, str(exc)) from None
    if not rules.min_file_size <= info.size <= rules.max_file_size:
        raise FileRejectedError(
            Reason.FILE_SIZE,
            f"{info.size} bytes, outside the accepted {rules.min_file_size}..{rules.max_file_size}",
        )
    if info.size <= IN_MEMORY_LIMIT:
        data = store.get(info.key)
        digest = hashlib.sha256(data).hexdigest()
        table, bad_values = _read(data, key)
    else:
        with tempfile.TemporaryDirectory(prefix="sn46-upload-") as tmp:
            local = Path(tmp) / "upload"
            store.download(info.key, local)
            with open(local, "rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            table, bad_values = _read(local, key)
    return LoadedUpload(info, key, table, bad_values, digest)


def _read(source: bytes | Path, key: UploadKey) -> tuple[pa.Table, list[BadValue]]:
    """The rows of a local copy of an upload, in the format its key names."""
    if key.format == JSON:
        try:
            return read_document(source if isinstance(source, bytes) else source.read_bytes(), key)
        except DocumentRejectedError as exc:
            raise FileRejectedError(exc.reason, exc.detail) from None
    raw = _read_parquet(pa.BufferReader(source) if isinstance(source, bytes) else str(source), key)
    try:
        table, bad_values = conform(raw)
    except SchemaMismatchError as exc:
        raise FileRejectedError(Reason.SCHEMA_MISMATCH, str(exc)) from None
    # Job files carry no epoch columns: null, as in every curated row of a job file.
    extra = [pa.nulls(table.num_rows, f.type) for f in EPOCH_SCHEMA]
    return pa.Table.from_arrays(table.columns + extra, schema=UPLOAD_SCHEMA), bad_values


def _read_parquet(source: pa.BufferReader | str, key: UploadKey) -> pa.Table:
    """The declared columns of a local parquet file, after the footer checks."""
    try:
        # A file on disk: one coalesced read of all column chunks. Bytes already in memory: no copy.
        parquet = pq.ParquetFile(source, pre_buffer=isinstance(source, str))
        footer_rows = parquet.metadata.num_rows
        if footer_rows != key.rows:
            raise FileRejectedError(
                Reason.FILENAME_ROW_MISMATCH, f"name says {key.rows} rows, the file holds {footer_rows}"
            )
        missing = missing_columns(parquet.schema_arrow)
        if missing:
            raise FileRejectedError(
                Reason.SCHEMA_MISMATCH, f"missing or repeated column(s) {', '.join(missing)}"
            )
        return parquet.read(columns=list(COLUMNS), use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as exc:  # the bytes are local: any failure is the file's
        raise FileRejectedError(Reason.UNREADABLE_FILE, f"not a readable parquet file: {exc}") from None
