"""What the assets' metadata looks like in the UI: typed, rounded, and the per-miner table."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pyarrow as pa

from sn46_pipelines.defs.listings.aggregates import _miner_table
from sn46_pipelines.defs.metadata import column_schema, rounded, table_metadata, ui_metadata


def test_plain_values_become_the_metadata_types_that_read_best():
    when = datetime(2026, 12, 3, 8, tzinfo=UTC)
    shown = ui_metadata(
        {
            "duplicate_rate": 0.123456789,
            "files_processed": 4,
            "published": True,
            "newest_upload": when.isoformat(),
            "prefix": "aggregates/",
            "store": "s3://bucket/data",
            "reason": "tracking mode",
            "skipped": None,
        }
    )
    assert shown["duplicate_rate"] == 0.1235 and shown["files_processed"] == 4 and shown["published"] is True
    assert shown["newest_upload"] == dg.MetadataValue.timestamp(when)
    assert shown["prefix"] == dg.MetadataValue.path("aggregates/")
    assert shown["store"] == dg.MetadataValue.url("s3://bucket/data")
    assert shown["reason"] == "tracking mode" and "skipped" not in shown


def test_reported_floats_are_rounded_and_other_values_kept():
    out = rounded(
        {"val_mape": dg.MetadataValue.float(0.118712345), "rows": dg.MetadataValue.int(7), "x": 1.23456}
    )
    assert out["val_mape"] == 0.1187 and out["x"] == 1.2346 and out["rows"] == dg.MetadataValue.int(7)


def test_table_assets_report_row_count_and_column_schema():
    schema = pa.schema([pa.field("hotkey", pa.string(), nullable=False), pa.field("score", pa.float64())])
    meta = table_metadata(3, schema)
    assert meta["dagster/row_count"] == 3
    columns = meta["dagster/column_schema"].columns
    assert [(c.name, c.type, c.constraints.nullable) for c in columns] == [
        ("hotkey", "string", False),
        ("score", "double", True),
    ]
    assert column_schema(schema) == meta["dagster/column_schema"]


def test_the_miner_table_lists_failing_miners_first_with_uid_and_reasons():
    scores = pa.table(
        {
            "hotkey": ["5Good", "5Copier"],
            "score": [0.93, 0.41],
            "passed": [True, False],
            "reasons": [[], ["copies", "low_score"]],
        }
    )
    text = _miner_table(scores, {"5Copier": 7}).value
    header, _rule, first, second = text.splitlines()
    assert header == "| hotkey | uid | score | passed | reasons |"
    assert first == "| 5Copier | 7 | 0.41 | no | copies, low_score |"
    assert second == "| 5Good |  | 0.93 | yes |  |"
