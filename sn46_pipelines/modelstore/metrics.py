"""Prometheus text exposition of a model store's metrics (``sn46 store stats --prometheus``).

Every name starts with ``sn46_modelstore_``. Counters (``*_total``) come from
the audit trail and never go down; gauges describe the store as listed now.
The commit rate is ``rate(sn46_modelstore_commits_total[1h])``: records are
never deleted, so the number of versions is the number of commits ever made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .stats import StoreStats

PREFIX = "sn46_modelstore_"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float | int | None]]


def prometheus_text(stats: StoreStats, *, labels: Mapping[str, str] | None = None) -> str:
    """``stats`` in Prometheus' text format 0.0.4, with ``labels`` (e.g. ``{"store": url}``) on every sample.

    A metric the store cannot know yet (no commit, so no commit latency) is
    left out rather than reported as zero, which would read as a real value.
    """
    common = dict(labels or {})
    for name in common:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"invalid Prometheus label name {name!r}")
    last_commit = datetime.fromisoformat(stats.last_commit_at).timestamp() if stats.last_commit_at else None
    families = [
        _Family(
            "storage_size_bytes",
            "gauge",
            "Bytes stored: blobs, records, pins and audit events.",
            [({}, stats.storage_bytes)],
        ),
        _Family("blob_count", "gauge", "Content-addressed blobs stored.", [({}, stats.blob_count)]),
        _Family(
            "version_count",
            "gauge",
            "Versions by state: live (files kept) or collected (record only).",
            [({"state": "live"}, stats.live_versions), ({"state": "collected"}, stats.collected_versions)],
        ),
        _Family(
            "commits_total",
            "counter",
            "Commits ever made (records are never deleted).",
            [({}, stats.versions)],
        ),
        _Family(
            "commit_latency_seconds",
            "gauge",
            "Duration of the newest commit.",
            [({}, stats.last_commit_latency_s)],
        ),
        _Family(
            "last_commit_timestamp_seconds", "gauge", "Unix time of the newest commit.", [({}, last_commit)]
        ),
        _Family(
            "gc_runs_total", "counter", "Garbage collections run (dry runs excluded).", [({}, stats.gc_runs)]
        ),
        _Family(
            "gc_versions_deleted_total",
            "counter",
            "Versions whose files garbage collection deleted.",
            [({}, stats.gc_versions_deleted_total)],
        ),
        _Family(
            "gc_bytes_freed_total",
            "counter",
            "Bytes garbage collection freed.",
            [({}, stats.gc_bytes_freed_total)],
        ),
        _Family(
            "gc_run_duration_seconds",
            "gauge",
            "Duration of the newest garbage collection.",
            [({}, stats.last_gc_duration_s)],
        ),
        _Family(
            "leftover_bytes",
            "gauge",
            "Bytes held by unfinished writes past the grace period (the next GC removes them).",
            [({}, None if stats.leftovers_error else stats.leftover_bytes)],
        ),
    ]
    lines: list[str] = []
    for family in families:
        samples = [(extra, value) for extra, value in family.samples if value is not None]
        if not samples:
            continue
        name = PREFIX + family.name
        lines += [f"# HELP {name} {family.help}", f"# TYPE {name} {family.kind}"]
        lines += [f"{name}{_labels({**common, **extra})} {_number(value)}" for extra, value in samples]
    return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))
