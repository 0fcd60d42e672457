"""DuckDB connections set up the same way for aggregates, views and ``sn46 query``."""

from __future__ import annotations

import os

import duckdb


def connect(
    database: str = ":memory:",
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    spill_directory: str | os.PathLike[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection with UTC as its time zone, so timestamps print and truncate the same everywhere.

    With ``memory_limit``, large sorts and hash tables spill to disk instead
    of failing; pass ``spill_directory`` (a folder the caller removes) so they
    do not land in DuckDB's default, ``.tmp`` in the working directory.
    """
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if spill_directory is not None:
        con.execute(f"SET temp_directory = '{os.fspath(spill_directory)}'")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con
