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
LOCATIONS = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
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
    """Whether the views are current with every upload ingested since ``moment``, nothing left in flight.

    Current means: ``listing_aggregates`` materialized after the newest
    ``miner_listings`` partition, and ``validator_views`` after those
    aggregates, the aggregates themselves newer than ``moment``. A views build
    that merely happened after ``moment`` is not enough: it may predate the
    round's last ingest.
    """

    def newest(key: str) -> float | None:
        nodes = graphql(port, MATERIALIZED, key=[key])["assetNodes"]
        latest = nodes[0]["assetMaterializations"] if nodes else []
        return float(latest[0]["timestamp"]) / 1000 if latest else None

    def built() -> bool:
        running = graphql(port, RUNS, statuses=["QUEUED", "STARTING", "STARTED"])["runsOrError"]["results"]
        ingested, aggregated, views = (
            newest(key) for key in ("miner_listings", "listing_aggregates", "validator_views")
        )
        # What a failed wait shows (pytest prints a failing test's output): the last state seen.
        in_flight = [(r["jobName"], r["status"]) for r in running]
        print(f"in flight {in_flight}; newest ingest {ingested}, aggregates {aggregated}, views {views}")
        if running:
            return False
        if ingested is None or aggregated is None or views is None:
            return False  # not built yet, or the webserver has not loaded the code location
        return moment < aggregated and ingested < aggregated < views

    return built


def runs_with_status(port: int, *statuses: str) -> Callable[[], list[str]]:
    """The ids of the runs in one of ``statuses`` (``STARTED``, ...), as the UI lists them."""

    def runs() -> list[str]:
        found = graphql(port, RUNS, statuses=list(statuses))["runsOrError"]["results"]
        return [run["runId"] for run in found]

    return runs


def location_loaded(port: int, name: str) -> Callable[[], bool]:
    """Whether the webserver has loaded code location ``name``; a load error fails at once, with
    its message."""

    def loaded() -> bool:
        data = graphql(port, LOCATIONS)["workspaceOrError"]
        entries = {entry["name"]: entry for entry in data.get("locationEntries", [])}
        entry = entries.get(name)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        location = entry["locationOrLoadError"] or {}
        assert location.get("__typename") != "PythonError", location.get("message")
        return True

    return loaded


def ingest_counts(port: int) -> Counter[str]:
    """Per hotkey: files processed, summed over every ``miner_listings`` materialization."""
    [node] = graphql(port, MATERIALIZATIONS, key=["miner_listings"])["assetNodes"]
    counts: Counter[str] = Counter()
    for event in node["assetMaterializations"]:
        values = {entry["label"]: entry.get("intValue") for entry in event["metadataEntries"]}
        counts[event["partition"]] += values.get("files_processed") or 0
    return counts
