"""What validators query: seven relations, defined once and served two ways.

``listings``, ``quarantine``, ``miner_epoch_stats``, ``miner_scores``,
``miner_job_stats``, ``zipcode_stats`` and ``cross_miner_duplicates`` exist

* in the DuckDB file ``views/sn46.duckdb`` (``validator_views``), as tables a
  validator queries after downloading that one file, and
* on a connection built straight over the data store (``sn46 query``), as
  views over Arrow datasets: the curated files the manifests name, plus the
  aggregate tables under ``aggregates/``.

Both are built by :func:`create_views` from the same SQL, over the same base
relations: ``curated``, ``ingest_quarantine``, ``submissions`` and
``committed`` (the committed curated area within the scoring window,
:func:`register_curated`) and the four aggregate tables.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs

from ..errors import SN46Error
from ..objectstore import ObjectStore
from . import duck

# VIEWS_FILE_KEY is also imported from here by the views asset (defs.listings.aggregates) and tests.
from .layout import (
    AGGREGATE_TABLES,
    VIEWS_FILE_KEY,  # noqa: F401
)
from .rules import Reason
from .schema import COLUMNS, EPOCH_SCHEMA, TIMESTAMP
from .sources import OPTIONAL_COLUMNS, CuratedSources, curated_sources, read_aggregate

#: Reason code of a row that repeats a listing another hotkey uploaded first.
CROSS_MINER_COPY = "cross_miner_copy"

#: Every relation a validator sees, in the order the DuckDB file lists them.
VIEW_NAMES: tuple[str, ...] = ("listings", "quarantine", "miner_epoch_stats", *AGGREGATE_TABLES)

#: DuckDB's names of the types of the optional columns.
_SQL_TYPES = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.int32(): "INTEGER", TIMESTAMP: "TIMESTAMPTZ"}

_LISTING_COLUMNS = ", ".join(f'c."{name}"' for name in COLUMNS)
_EPOCH_COLUMNS = ", ".join(f'c."{name}"' for name in EPOCH_SCHEMA.names)

#: Accepted listings: curated rows that are not a copy of another miner's earlier upload.
LISTINGS_SQL = f"""
    SELECT {_LISTING_COLUMNS}, c.hotkey, c.job_id, c.file_key, c.row_index, c.uploaded_at, {_EPOCH_COLUMNS}
    FROM curated AS c
    ANTI JOIN cross_miner_duplicates AS d
        ON c.hotkey = d.hotkey AND c.file_key = d.file_key AND c.row_index = d.row_index
"""

#: Every rejection: ingest's (whole files have a null ``row_index``) and the cross-miner copies.
QUARANTINE_SQL = f"""
    SELECT hotkey, job_id, file_key, row_index, reason, detail FROM ingest_quarantine
    UNION ALL
    SELECT hotkey, job_id, file_key, row_index, '{CROSS_MINER_COPY}' AS reason,
           format('zpid {{}} at {{}} for {{}} was uploaded first by {{}} in {{}}',
                  zpid, price, "datetime", original_hotkey, original_file_key) AS detail
    FROM cross_miner_duplicates
"""

#: The job an epoch/zipcode document answers (:func:`~.keys.epoch_job_id`), as a DuckDB regex: epoch, zip.
EPOCH_JOB_PATTERN = r"^epoch_(.+)_zip_([0-9]{5})$"
#: Columns the SN46 validator requires of a listing (its ``zpid, address, price, property_type,
#: listing_status``): a row missing one is incomplete. (The row rules also require ``datetime``.)
VALIDATOR_REQUIRED: tuple[str, ...] = ("zpid", "address", "price", "home_type", "home_status")
#: How the row rules word a missing value and a listing outside its folder's zip (``row_checks``).
_INCOMPLETE = ", ".join(f"'{name} is missing or blank'" for name in VALIDATOR_REQUIRED)
_OTHER_ZIP = r"^zip_code '([0-9]{5})' but the job is for "

#: Per hotkey and epoch, the rates the SN46 validator checks an epoch's upload by, as shares of the
#: rows submitted for that epoch: complete, plausible (complete and no implausible value) and in
#: one of the epoch's zip codes (the zip folders the miner uploaded for it). A rejected row counts
#: under its first reason only, so a row rejected as incomplete or implausible never had its zip
#: checked: ``in_epoch_zip_rate`` is a share of the rows whose zip was (``zip_checked_rows``).
#: Rows of job files have no epoch and are left out (``miner_job_stats`` reports them).
EPOCH_STATS_SQL = f"""
    WITH jobs AS (
        SELECT hotkey, job_id, regexp_extract(job_id, '{EPOCH_JOB_PATTERN}', 1) AS epoch_id,
               regexp_extract(job_id, '{EPOCH_JOB_PATTERN}', 2) AS zipcode
        FROM (
            SELECT hotkey::VARCHAR AS hotkey, job_id::VARCHAR AS job_id FROM submissions
            UNION SELECT hotkey::VARCHAR, job_id::VARCHAR FROM quarantine
            UNION SELECT hotkey::VARCHAR, job_id::VARCHAR FROM curated
        )
        WHERE regexp_matches(job_id, '{EPOCH_JOB_PATTERN}')
    ),
    zipcodes AS (SELECT hotkey, epoch_id, list(DISTINCT zipcode ORDER BY zipcode) AS zipcodes
                 FROM jobs GROUP BY ALL),
    submitted AS (SELECT hotkey::VARCHAR AS hotkey, job_id::VARCHAR AS job_id, sum(rows_in) AS rows_in
                  FROM submissions GROUP BY ALL),
    accepted AS (SELECT hotkey::VARCHAR AS hotkey, job_id::VARCHAR AS job_id, count(*) AS rows_accepted
                 FROM listings GROUP BY ALL),
    rejected AS (
        SELECT q.hotkey::VARCHAR AS hotkey, q.job_id::VARCHAR AS job_id,
               count(*) FILTER (q.row_index IS NOT NULL) AS rows_rejected,
               count(*) FILTER (q.row_index IS NULL) AS files_rejected,
               count(*) FILTER (q.reason = '{Reason.MISSING_REQUIRED}' AND q.detail IN ({_INCOMPLETE}))
                   AS incomplete,
               count(*) FILTER (q.reason IN ('{Reason.MISSING_REQUIRED}', '{Reason.IMPLAUSIBLE_VALUE}'))
                   AS unchecked_zip,
               count(*) FILTER (q.reason = '{Reason.IMPLAUSIBLE_VALUE}') AS implausible,
               count(*) FILTER (q.reason = '{Reason.ZIP_MISMATCH}' AND NOT coalesce(list_contains(
                   z.zipcodes, regexp_extract(q.detail, $${_OTHER_ZIP}$$, 1)), false)) AS outside_epoch
        FROM quarantine AS q
        JOIN jobs AS j ON q.hotkey::VARCHAR = j.hotkey AND q.job_id::VARCHAR = j.job_id
        JOIN zipcodes AS z ON j.hotkey = z.hotkey AND j.epoch_id = z.epoch_id
        GROUP BY ALL
    ),
    per_job AS (
        -- The rows a job's runs read: at least those accounted for, as in miner_job_stats.
        SELECT j.hotkey, j.epoch_id, coalesce(a.rows_accepted, 0) AS rows_accepted,
               coalesce(r.rows_rejected, 0) AS rows_rejected, coalesce(r.files_rejected, 0) AS files_rejected,
               greatest(coalesce(s.rows_in, 0), coalesce(a.rows_accepted, 0) + coalesce(r.rows_rejected, 0))
                   AS rows_submitted,
               coalesce(r.incomplete, 0) AS incomplete, coalesce(r.implausible, 0) AS implausible,
               coalesce(r.unchecked_zip, 0) AS unchecked_zip, coalesce(r.outside_epoch, 0) AS outside_epoch
        FROM jobs AS j
        LEFT JOIN submitted AS s USING (hotkey, job_id)
        LEFT JOIN accepted AS a USING (hotkey, job_id)
        LEFT JOIN rejected AS r USING (hotkey, job_id)
    )
    SELECT hotkey, epoch_id, any_value(z.zipcodes) AS zipcodes,
           sum(rows_submitted)::BIGINT AS rows_submitted, sum(rows_accepted)::BIGINT AS rows_accepted,
           sum(rows_rejected)::BIGINT AS rows_rejected, sum(files_rejected)::BIGINT AS files_rejected,
           1 - sum(incomplete) / nullif(sum(rows_submitted), 0) AS complete_rate,
           1 - sum(incomplete + implausible) / nullif(sum(rows_submitted), 0) AS plausible_rate,
           sum(rows_submitted - unchecked_zip)::BIGINT AS zip_checked_rows,
           1 - sum(outside_epoch) / nullif(sum(rows_submitted - unchecked_zip), 0) AS in_epoch_zip_rate
    FROM per_job JOIN zipcodes AS z USING (hotkey, epoch_id)
    GROUP BY hotkey, epoch_id
    ORDER BY hotkey, epoch_id
"""


class StaleAggregatesError(SN46Error):
    """Curated data changed after ``listing_aggregates`` ran: its newest rows were never checked.

    The normal state between an ingest and the next aggregates run, not a fault: training skips
    and the next aggregates run asks for it again."""


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Define ``listings``, ``quarantine`` and ``miner_epoch_stats`` over the base relations on ``con``."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW listings AS {LISTINGS_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW quarantine AS {QUARANTINE_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW miner_epoch_stats AS {EPOCH_STATS_SQL}")


def register_curated(
    con: duckdb.DuckDBPyConnection, sources: CuratedSources, since: datetime | None = None
) -> None:
    """Make the committed curated area scannable as ``curated``, ``ingest_quarantine`` and ``submissions``.

    With ``since`` (the scoring window's start) each holds only what is
    current: listings scraped, and rejections and submissions of ingest runs,
    from then on. ``committed`` lists each committed hotkey, the listings file
    it was read from and that file's row count.

    Files on a local disk are read by DuckDB's own parquet reader (about twice
    as fast as scanning the Arrow dataset, which converts every batch); files
    elsewhere (S3) through the Arrow dataset, which needs no DuckDB extension.
    """
    sets = (("curated_files", sources.listings), ("quarantine_files", sources.quarantine))
    for name, dataset in sets:
        if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.filesystem, fs.LocalFileSystem):
            paths = ", ".join("'" + path.replace("'", "''") + "'" for path in dataset.files)
            query = f"SELECT * FROM read_parquet([{paths}], union_by_name = true)"
            present = set(con.sql(f"{query} LIMIT 0").columns)
            # Only files written before a column existed (undated rejections count as current,
            # rows of job files have no epoch): the column is null, as the Arrow dataset reads it.
            absent = [
                f"NULL::{_SQL_TYPES[field.type]} AS {field.name}"
                for field in dataset.schema
                if field.name in OPTIONAL_COLUMNS and field.name not in present
            ]
            if absent:
                query = query.replace("SELECT *", "SELECT *, " + ", ".join(absent), 1)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {query}")
        else:
            con.register(name, dataset)
    con.register("submission_runs", sources.submissions)
    start = "NULL" if since is None else f"TIMESTAMPTZ '{since.isoformat()}'"
    windowed = {
        "curated": f'SELECT * FROM curated_files WHERE {start} IS NULL OR "datetime" >= {start}',
        "ingest_quarantine": "SELECT * FROM quarantine_files"
        f" WHERE {start} IS NULL OR ingested_at IS NULL OR ingested_at >= {start}",
        "submissions": f"SELECT * FROM submission_runs WHERE {start} IS NULL OR ingested_at >= {start}",
    }
    for name, query in windowed.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {query}")
    con.register("committed", sources.committed())


def connect_views(store: ObjectStore, **settings) -> duckdb.DuckDBPyConnection:
    """A connection where all seven views read straight from the store (``sn46 query``).

    ``settings`` go to :func:`duck.connect` (``memory_limit``, ``threads``).
    """
    con = duck.connect(**settings)
    for name in AGGREGATE_TABLES:
        con.register(name, read_aggregate(store, name))
    register_curated(con, curated_sources(store), _window_start(con))
    create_views(con)
    return con


def _window_start(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The scoring window the published aggregates used, so the views show the listings they scored."""
    if "window_start" not in con.sql("SELECT * FROM miner_scores LIMIT 0").columns:
        return None  # tables published before the window existed
    [(start,)] = con.sql("SELECT min(window_start) FROM miner_scores").fetchall()
    return start


def write_views_file(store: ObjectStore, path: str | os.PathLike[str]) -> dict[str, int]:
    """Write the seven views as tables of a fresh DuckDB file at ``path``; return rows per table.

    The file is self-contained (checkpointed, no WAL, no reference to the
    store): a validator opens it with nothing else at hand.
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    con = connect_views(store)
    try:
        con.execute(f"ATTACH '{path}' AS out")
        rows = {}
        for name in VIEW_NAMES:
            con.execute(f"CREATE TABLE out.{name} AS SELECT * FROM {name}")
            rows[name] = con.execute(f"SELECT count(*) FROM out.{name}").fetchall()[0][0]
        con.execute("DETACH out")
    finally:
        con.close()
    return rows


def stale_hotkeys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Committed hotkeys whose curated file is not the one the aggregates were computed from.

    Ingest may commit between two ``listing_aggregates`` runs; the new rows of
    such a hotkey are in ``listings`` but were never checked for cross-miner
    copies (and a new hotkey has no score yet).
    """
    rows = con.execute(
        """
        SELECT c.hotkey FROM committed AS c LEFT JOIN miner_scores AS s USING (hotkey)
        WHERE c.listings_key IS DISTINCT FROM s.listings_key ORDER BY c.hotkey
        """
    ).fetchall()
    return [hotkey for (hotkey,) in rows]


def training_listings(store: ObjectStore) -> pa.Table:
    """Accepted listings of the miners that passed, each listing once: what the price model trains on.

    :class:`StaleAggregatesError` when a passing miner's curated data changed
    after the aggregates: training waits for them rather than learn from
    unchecked rows.
    """
    con = connect_views(store)
    try:
        passed = {h for (h,) in con.execute("SELECT hotkey FROM miner_scores WHERE passed").fetchall()}
        stale = sorted(passed.intersection(stale_hotkeys(con)))
        if stale:
            raise StaleAggregatesError(
                f"{store.url}: the curated data of {len(stale)} passing hotkeys changed after "
                f"listing_aggregates ran ({', '.join(stale[:5])}); materialize listing_aggregates again"
            )
        return con.sql(
            "SELECT l.* FROM listings AS l SEMI JOIN miner_scores AS s ON l.hotkey = s.hotkey AND s.passed"
        ).to_arrow_table()
    finally:
        con.close()
