"""Watching a live Dagster deployment from outside, as a person would: its webserver's GraphQL."""

from __future__ import annotations

import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

MATERIALIZED = """
query ($key: [String!]!) {
  assetNodes(assetKeys: [{path: $key}]) { assetMaterializations(limit: 1) { timestamp runId } }
}"""
RUNS = """
query ($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""
MATERIALIZATIONS = """
query ($key: [String!]!) {
  assetNodes(assetKeys: [{path: $key}]) {
    assetMaterializations(limit: 1000) {
      partition runId metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
  }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for(
    condition: Callable[[], Any],
    what: str,
    processes: Mapping[str, subprocess.Popen[bytes]],
    logs: Callable[[], str],
    limit: float,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the processes' logs after ``limit``.

    A process of the deployment that exits fails the wait at once.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{logs()}"
        try:
            value = condition()
        except httpx.HTTPError:
            value = None  # the webserver is still starting
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"not within {limit} s: {what}\n{logs()}")


def views_built_after(port: int, moment: float) -> Callable[[], bool]:
    """Whether validator_views materialized after ``moment`` and no run is left queued or running."""

    def built() -> bool:
        nodes = graphql(port, MATERIALIZED, key=["validator_views"])["assetNodes"]
        if not nodes:  # the webserver answers before it has loaded the code location
            return False
        latest = nodes[0]["assetMaterializations"]
        running = graphql(port, RUNS, statuses=["QUEUED", "STARTING", "STARTED"])["runsOrError"]["results"]
        return bool(latest) and float(latest[0]["timestamp"]) / 1000 > moment and not running

    return built


def ingest_counts(port: int) -> Counter[str]:
    """Per hotkey: files processed, summed over every ``miner_listings`` materialization."""
    [node] = graphql(port, MATERIALIZATIONS, key=["miner_listings"])["assetNodes"]
    counts: Counter[str] = Counter()
    for event in node["assetMaterializations"]:
        values = {entry["label"]: entry.get("intValue") for entry in event["metadataEntries"]}
        counts[event["partition"]] += values.get("files_processed") or 0
    return counts
