"""Cross-miner aggregates over the curated listings, computed in DuckDB.

Four tables come out (see :data:`CONTRACT` for the columns validators rely on):

``cross_miner_duplicates``
    The same listing (same ``zpid``, ``price`` and ``datetime``) curated for
    several hotkeys belongs to the hotkey whose file was uploaded first; every
    row of any other hotkey is a copy, quarantined as ``cross_miner_copy``
    against the copier only. "First" is the earliest ``uploaded_at``; on a tie
    the lexicographically smaller hotkey, then the smaller ``file_key`` and
    ``row_index`` win, so the answer never depends on scan order.
``miner_job_stats`` / ``miner_scores``
    Per hotkey and job, and per hotkey: accepted and rejected rows, unique
    zpids, duplicate, copy, plausibility and zip-match rates, completeness and
    freshness; ``miner_scores`` adds the score (:mod:`.scoring`).
``zipcode_stats``
    Accepted listings, median price and median price per square foot per zip.

Everything is computed over one scoring window (``ScoringRules.window``
back from ``now``): a miner's current listings are the curated rows scraped
in it, and its rates are shares of ``rows_submitted``, the rows its ingest
runs of the window read. A listing uploaded again in a later round is one
current listing but two submitted rows, so re-uploads neither inflate volume
nor dilute rejections. Copies are a share of the current listings.
Whole-file rejections count in ``files_rejected``: their rows were never
read, so they cannot count as rows.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..objectstore import ObjectStore
from . import duck
from .layout import AGGREGATES_PREFIX, REJECTED_AGGREGATES_PREFIX, aggregate_key
from .rules import REASONS
from .schema import COLUMNS
from .scoring import ScoringRules, score_sql
from .sources import CuratedSources, curated_sources
from .views import CROSS_MINER_COPY, create_views, register_curated

#: Reason codes counted per miner: ingest's and the cross-miner copy.
ALL_REASONS: tuple[str, ...] = (*REASONS, CROSS_MINER_COPY)

#: Columns each table guarantees, with their Arrow types (tables may carry more).
CONTRACT: dict[str, dict[str, pa.DataType]] = {
    "miner_scores": {
        "hotkey": pa.string(),
        "rows_accepted": pa.int64(),
        "rows_rejected": pa.int64(),
        "curated_rows": pa.int64(),
        "current_rows": pa.int64(),
        "listings_key": pa.string(),
        "window_start": pa.timestamp("us", tz="UTC"),
        "duplicate_rate": pa.float64(),
        "copy_rate": pa.float64(),
        "score": pa.float64(),
        "passed": pa.bool_(),
        "reasons": pa.list_(pa.string()),
    },
    "miner_job_stats": {
        "hotkey": pa.string(),
        "job_id": pa.string(),
        "rows_accepted": pa.int64(),
        "rows_rejected": pa.int64(),
        "unique_zpids": pa.int64(),
        "duplicate_rate": pa.float64(),
        "completeness": pa.float64(),
        "plausibility_rate": pa.float64(),
        "zip_match_rate": pa.float64(),
        "median_age_days": pa.float64(),
    },
    "zipcode_stats": {
        "zip_code": pa.string(),
        "listings": pa.int64(),
        "median_price": pa.float64(),
        "median_price_per_sqft": pa.float64(),
    },
    "cross_miner_duplicates": {
        "hotkey": pa.string(),
        "job_id": pa.string(),
        "file_key": pa.string(),
        "row_index": pa.int32(),
        "original_hotkey": pa.string(),
        "original_file_key": pa.string(),
    },
}

#: Columns that identify a row of each table: never null.
KEYS: dict[str, tuple[str, ...]] = {
    "miner_scores": ("hotkey",),
    "miner_job_stats": ("hotkey", "job_id"),
    "zipcode_stats": ("zip_code",),
    "cross_miner_duplicates": ("hotkey", "file_key", "row_index", "original_hotkey"),
}

#: ``job_id`` of whole-file rejections whose key named no job.
UNKNOWN_JOB = "(unknown)"

_COPIES_SQL = """
    WITH contested AS (
        -- Listing keys curated more than once, by a hash of the key: one 64-bit group key
        -- instead of three columns, and a count instead of comparing hotkeys. This is a
        -- superset filter (a hash collision, or a hotkey holding a listing twice, only
        -- lets extra rows through); the ranking below decides on the real columns.
        SELECT hash(zpid, price, "datetime") AS listing FROM curated
        GROUP BY listing HAVING count(*) > 1
    ),
    ranked AS (
        SELECT hotkey, job_id, file_key, row_index, uploaded_at, zpid, price, "datetime",
               first_value({'hotkey': hotkey, 'job_id': job_id, 'file_key': file_key,
                            'row_index': row_index, 'uploaded_at': uploaded_at}) OVER (
                   PARTITION BY zpid, price, "datetime"
                   ORDER BY uploaded_at, hotkey, file_key, row_index
               ) AS original
        FROM curated
        WHERE hash(zpid, price, "datetime") IN (SELECT listing FROM contested)
    )
    SELECT hotkey::VARCHAR AS hotkey, job_id::VARCHAR AS job_id, file_key::VARCHAR AS file_key,
           row_index, uploaded_at, zpid, price, "datetime",
           original.hotkey::VARCHAR AS original_hotkey, original.job_id::VARCHAR AS original_job_id,
           original.file_key::VARCHAR AS original_file_key, original.row_index AS original_row_index,
           original.uploaded_at AS original_uploaded_at
    FROM ranked
    WHERE hotkey <> original.hotkey
    ORDER BY hotkey, file_key, row_index
"""

#: Mean share of the 18 upload columns a group's rows fill: summing per-column counts reads
#: each column's validity once, cheaper than adding up 18 flags row by row.
_COMPLETENESS = "(" + " + ".join(f'count("{name}")' for name in COLUMNS) + f") / ({len(COLUMNS)} * count(*))"
_REJECTED = ",\n".join(
    f"count(*) FILTER (reason = '{code}' AND row_index IS NOT NULL) AS rejected_{code}"
    for code in ALL_REASONS
)

#: Per (hotkey, job) and per hotkey in one pass: ``all_jobs`` marks the per-hotkey rows.
_STATS_SQL = f"""
    WITH accepted AS (
        SELECT hotkey, job_id, grouping(job_id) = 1 AS all_jobs,
               count(*) AS rows_accepted,
               {_COMPLETENESS} AS completeness,
               max("datetime") AS newest_listing, median("datetime") AS median_listing
        FROM listings
        GROUP BY GROUPING SETS ((hotkey, job_id), (hotkey))
    ),
    zpids AS (SELECT hotkey, job_id, hash(zpid) AS zpid_hash FROM listings),
    repeated AS (
        -- Rows whose zpid their hotkey holds more than once: none when curation kept one row
        -- per zpid. Counting distinct zpids over these few rows, not all of them, is what
        -- keeps unique_zpids cheap (exact but for a 64-bit hash collision).
        SELECT z.* FROM zpids AS z SEMI JOIN (
            SELECT hotkey, zpid_hash FROM zpids GROUP BY ALL HAVING count(*) > 1
        ) AS r ON z.hotkey = r.hotkey AND z.zpid_hash = r.zpid_hash
    ),
    surplus AS (
        SELECT hotkey, job_id, grouping(job_id) = 1 AS all_jobs,
               count(*) - count(DISTINCT zpid_hash) AS repeats
        FROM repeated
        GROUP BY GROUPING SETS ((hotkey, job_id), (hotkey))
    ),
    submitted AS (
        SELECT hotkey, job_id, grouping(job_id) = 1 AS all_jobs, sum(rows_in)::BIGINT AS rows_in
        FROM submissions
        GROUP BY GROUPING SETS ((hotkey, job_id), (hotkey))
    ),
    rejected AS (
        SELECT hotkey, job_id, grouping(job_id) = 1 AS all_jobs,
               count(*) FILTER (row_index IS NOT NULL) AS rows_rejected,
               count(*) FILTER (row_index IS NULL) AS files_rejected,
               {_REJECTED}
        FROM (SELECT * EXCLUDE (job_id), coalesce(job_id, '{UNKNOWN_JOB}') AS job_id FROM quarantine)
        GROUP BY GROUPING SETS ((hotkey, job_id), (hotkey))
    ),
    joined AS (
        SELECT coalesce(a.hotkey, r.hotkey, u.hotkey)::VARCHAR AS hotkey,
               coalesce(a.job_id, r.job_id, u.job_id)::VARCHAR AS job_id,
               coalesce(a.all_jobs, r.all_jobs, u.all_jobs) AS all_jobs,
               coalesce(a.rows_accepted, 0) AS rows_accepted,
               coalesce(r.rows_rejected, 0) AS rows_rejected,
               u.rows_in,
               coalesce(a.rows_accepted, 0) - coalesce(s.repeats, 0) AS unique_zpids,
               coalesce(r.files_rejected, 0) AS files_rejected,
               {", ".join(f"coalesce(r.rejected_{c}, 0) AS rejected_{c}" for c in ALL_REASONS)},
               a.completeness, a.newest_listing, a.median_listing
        FROM accepted AS a
        LEFT JOIN surplus AS s
            ON a.hotkey = s.hotkey AND a.all_jobs = s.all_jobs AND a.job_id IS NOT DISTINCT FROM s.job_id
        FULL JOIN rejected AS r
            ON a.hotkey = r.hotkey AND a.all_jobs = r.all_jobs AND a.job_id IS NOT DISTINCT FROM r.job_id
        FULL JOIN submitted AS u
            ON coalesce(a.hotkey, r.hotkey) = u.hotkey AND coalesce(a.all_jobs, r.all_jobs) = u.all_jobs
           AND coalesce(a.job_id, r.job_id) IS NOT DISTINCT FROM u.job_id
    )
    SELECT hotkey, job_id, all_jobs, rows_accepted, rows_rejected, rows_submitted,
           rows_accepted + rejected_{CROSS_MINER_COPY} AS current_rows,
           files_rejected, unique_zpids,
           1 - rows_rejected / nullif(rows_submitted, 0) AS acceptance_rate,
           rejected_duplicate / nullif(rows_submitted, 0) AS duplicate_rate,
           rejected_{CROSS_MINER_COPY} / nullif(rows_accepted + rejected_{CROSS_MINER_COPY}, 0) AS copy_rate,
           1 - rejected_implausible_value / nullif(rows_submitted, 0) AS plausibility_rate,
           1 - rejected_zip_mismatch / nullif(rows_submitted, 0) AS zip_match_rate,
           completeness,
           newest_listing,
           epoch($now - newest_listing) / 86400 AS newest_age_days,
           epoch($now - median_listing) / 86400 AS median_age_days,
           {", ".join(f"rejected_{c}" for c in ALL_REASONS)}
    FROM (
        -- The rows the window's runs read; at least the rows accounted for (a hotkey committed
        -- before runs were recorded has no run, and a duplicate may outlive its run's window).
        SELECT * EXCLUDE (rows_in),
               greatest(coalesce(rows_in, 0), rows_accepted + rows_rejected) AS rows_submitted
        FROM joined
    )
"""

_ZIPCODE_SQL = """
    SELECT zip_code, count(*) AS listings, count(DISTINCT hotkey) AS hotkeys,
           median(price) AS median_price,
           median(price / living_area) FILTER (living_area > 0) AS median_price_per_sqft,
           max("datetime") AS newest_listing
    FROM listings
    WHERE zip_code IS NOT NULL
    GROUP BY zip_code
    ORDER BY zip_code
"""


@dataclass
class Aggregates:
    """The four aggregate tables of one run, and the hotkeys they cover."""

    hotkeys: list[str]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    #: Committed hotkeys left out because the metagraph no longer lists them.
    inactive: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> pa.Table:
        return self.tables[name]

    def summary(self) -> dict[str, int]:
        """Headline counts for run metadata and logs."""
        scores = self["miner_scores"]
        return {
            "hotkeys": len(self.hotkeys),
            "hotkeys_inactive": len(self.inactive),
            "passed": sum(scores.column("passed").to_pylist()),
            "rows_accepted": sum(scores.column("rows_accepted").to_pylist()),
            "cross_miner_copies": self["cross_miner_duplicates"].num_rows,
            "zipcodes": self["zipcode_stats"].num_rows,
        }


def compute_aggregates(
    sources: CuratedSources,
    *,
    now: datetime,
    rules: ScoringRules | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Aggregates:
    """Compute the four tables from the committed curated data, over the window ending at ``now``.

    Every hotkey of ``sources`` gets a ``miner_scores`` row, including one
    whose every row was rejected, or left the window (it scores 0).
    """
    with tempfile.TemporaryDirectory(prefix="sn46-duckdb-") as spill:
        con = duck.connect(memory_limit=memory_limit, threads=threads, spill_directory=spill)
        try:
            tables = _compute(con, sources, now, rules or ScoringRules())
        finally:
            con.close()
    return Aggregates(hotkeys=list(sources.hotkeys), tables=tables, inactive=list(sources.inactive))


def _compute(
    con: duckdb.DuckDBPyConnection, sources: CuratedSources, now: datetime, rules: ScoringRules
) -> dict[str, pa.Table]:
    """The four tables, computed on ``con`` (the copies first: the other three exclude them)."""
    now = _utc(now)
    since = now - rules.window
    register_curated(con, sources, since)
    con.execute(f"CREATE TEMP TABLE cross_miner_duplicates AS {_COPIES_SQL}")
    create_views(con)
    con.execute(f"CREATE TEMP TABLE stats AS {_STATS_SQL}", {"now": now})
    miners = f"""
        SELECT *, TIMESTAMPTZ '{since.isoformat()}' AS window_start
        FROM committed
        LEFT JOIN (SELECT * EXCLUDE (job_id, all_jobs) FROM stats WHERE all_jobs) USING (hotkey)
    """
    zero_filled = _zero_filled(con, miners)
    scores = score_sql(rules, f"({zero_filled})")
    return {
        "miner_scores": _arrow(
            con,
            "SELECT hotkey, score, passed, reasons, * EXCLUDE (hotkey, score, passed, reasons)"
            f" FROM ({scores}) ORDER BY hotkey",
        ),
        "miner_job_stats": _arrow(
            con, "SELECT * EXCLUDE (all_jobs) FROM stats WHERE NOT all_jobs ORDER BY hotkey, job_id"
        ),
        "zipcode_stats": _arrow(con, _ZIPCODE_SQL),
        "cross_miner_duplicates": _arrow(con, "SELECT * FROM cross_miner_duplicates"),
    }


def aggregate_store(
    store: ObjectStore,
    *,
    now: datetime | None = None,
    rules: ScoringRules | None = None,
    memory_limit: str | None = None,
) -> Aggregates:
    """Compute the aggregates over the store's committed curated data (nothing is written)."""
    return compute_aggregates(
        curated_sources(store), now=now or datetime.now(UTC), rules=rules, memory_limit=memory_limit
    )


def write_aggregates(store: ObjectStore, aggregates: Aggregates, *, publish: bool = True) -> str:
    """Write each table as parquet; return the prefix written under.

    ``publish=False`` (a blocking check failed) writes under
    ``aggregates/rejected/`` instead, so the last good tables stay what views,
    ``sn46 query`` and training read, and the bad ones can still be inspected.
    """
    prefix = AGGREGATES_PREFIX if publish else REJECTED_AGGREGATES_PREFIX
    for name, table in aggregates.tables.items():
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        store.put(aggregate_key(name, prefix), buffer.getvalue())
    return prefix


def _zero_filled(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """``query`` with the counts (its BIGINT columns) of hotkeys with no row at all set to 0.

    Their rates stay null: nothing was submitted, so there is no rate.
    """
    relation = con.sql(query)
    types = zip(relation.columns, relation.types, strict=True)
    counts = [name for name, kind in types if str(kind) == "BIGINT"]
    replaced = ", ".join(f"coalesce({c}, 0) AS {c}" for c in counts)
    return f"SELECT * REPLACE ({replaced}) FROM ({query})"


def _arrow(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    return con.sql(query).to_arrow_table()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)
