"""DuckDB connections set up the same way for aggregates, views and ``sn46 query``."""

from __future__ import annotations

import tempfile

import duckdb


def connect(
    database: str = ":memory:", *, memory_limit: str | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with UTC as its time zone, so timestamps print and truncate the same everywhere.

    With ``memory_limit``, large sorts and hash tables spill to a private
    temporary folder instead of failing (DuckDB's default, ``.tmp`` in the
    working directory, may not be writable).
    """
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{tempfile.mkdtemp(prefix='sn46-duckdb-')}'")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con
