"""``sn46 query "SQL"``: run SQL against the validator views, straight over the data store.

The views are the ones in ``views/sn46.duckdb`` (``listings``, ``quarantine``,
``miner_scores``, ``miner_job_stats``, ``zipcode_stats``,
``cross_miner_duplicates``), built from the same SQL over Arrow datasets read
in place from the configured store (a folder or S3 with a custom endpoint),
so no download and no DuckDB extension is needed.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import decimal
import json
import sys

#: Rows ``--format table`` prints before it elides the middle.
TABLE_ROWS = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query",
        help="run SQL against the validator views over the data store",
        description="Run one SQL statement against listings, quarantine, miner_scores, miner_job_stats, "
        "zipcode_stats and cross_miner_duplicates, read straight from the configured data store.",
    )
    parser.add_argument("sql", help='for example: "select * from miner_scores order by score desc"')
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (default), csv with a header, or one JSON array of row objects",
    )
    parser.add_argument("--store", help="data store URL (default: the environment's data_store)")
    parser.set_defaults(handler=_query)


def _query(args: argparse.Namespace) -> int:
    import duckdb

    from ..config import load_settings
    from ..listings.sources import CuratedDataError
    from ..listings.views import connect_views, stale_hotkeys

    settings = load_settings(args.env)
    # A --store URL gets the environment's keys too, never boto3's chain behind the environment's back.
    store = settings.open_store(args.store) if args.store else settings.open_data_store()
    try:
        con = connect_views(store)
    except CuratedDataError as exc:
        print(f"sn46: error: {exc}", file=sys.stderr)
        return 2
    try:
        stale = stale_hotkeys(con)
        if stale:
            print(
                f"sn46: note: {len(stale)} hotkeys committed curated data after the aggregates were "
                "computed; "
                "their newest listings are unchecked for copies (run: sn46 pipeline run)",
                file=sys.stderr,
            )
        relation = con.sql(args.sql)
        if relation is not None:
            _print(relation, args.format)
    except duckdb.Error as exc:
        print(f"sn46: error: query failed: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    return 0


def _print(relation, form: str) -> None:
    if form == "table":
        relation.show(max_rows=TABLE_ROWS, max_width=10_000)
        return
    rows = relation.fetchall()
    if form == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(relation.columns)
        writer.writerows([_csv_value(v) for v in row] for row in rows)
        return
    records = [dict(zip(relation.columns, row, strict=True)) for row in rows]
    print(json.dumps(records, default=_json_value))


def _csv_value(value: object) -> object:
    """Null as empty, booleans as true/false, lists (``reasons``) as JSON text a reader gets back whole."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=_json_value)
    if isinstance(value, (str, int, float)):
        return value
    return _json_value(value)


def _json_value(value: object) -> object:
    """Timestamps as ISO 8601, decimals as numbers, anything else as text."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)
