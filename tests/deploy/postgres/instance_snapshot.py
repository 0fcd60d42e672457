"""What an instance holds of a pipeline pass: runs, dynamic partitions, materializations per partition.

Imported by the tests, and run as a script (``python instance_snapshot.py``) to
read the same things from a fresh process after a restart: it prints the
snapshot of ``DagsterInstance.get()`` as JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import dagster as dg

PARTITIONS = "miner_hotkeys"
INGESTED = dg.AssetKey("miner_listings")
DOWNSTREAM = ("listing_aggregates", "validator_views", "price_model", "inference_pin")


def snapshot(instance: dg.DagsterInstance) -> dict[str, Any]:
    """Plain, comparable facts: every run, the hotkey partitions, materializations by partition and asset."""
    runs = sorted(
        (
            r.dagster_run.run_id,
            r.dagster_run.job_name,
            r.dagster_run.status.value,
            r.dagster_run.tags.get("dagster/partition"),
        )
        for r in instance.get_run_records()
    )
    ingested = instance.fetch_materializations(INGESTED, limit=10_000).records
    downstream = {
        name: [r.run_id for r in instance.fetch_materializations(dg.AssetKey(name), limit=100).records]
        for name in DOWNSTREAM
    }
    return {
        "storage": type(instance.run_storage).__name__,
        "runs": [list(run) for run in runs],
        "partitions": sorted(instance.get_dynamic_partitions(PARTITIONS)),
        "materializations_per_partition": dict(sorted(Counter(r.partition_key for r in ingested).items())),
        "downstream_materialized_by": downstream,
    }


if __name__ == "__main__":
    with dg.DagsterInstance.get() as current:
        print(json.dumps(snapshot(current)))
