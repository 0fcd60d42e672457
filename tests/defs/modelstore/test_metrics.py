"""The Prometheus exposition of a real store's metrics, read back with a strict parser of the text format."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sn46_pipelines.modelstore import ModelStore, collect_garbage
from sn46_pipelines.modelstore.metrics import prometheus_text
from sn46_pipelines.modelstore.stats import store_stats
from tests.defs.modelstore.operations_helpers import folder_only

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> tuple[dict[str, str], dict[Sample, float]]:
    """Types by metric and values by (name, labels); fails on anything text format 0.0.4 forbids."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    values: dict[Sample, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped and name not in types, f"HELP must come first, once: {line}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped and name not in types and kind in {"counter", "gauge"}, line
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match and match["name"] in types, f"sample without TYPE: {line}"
            raw = match["labels"] or ""
            pairs = _LABEL.findall(raw)
            assert "".join(f'{k}="{v}",' for k, v in pairs).rstrip(",") == raw, f"bad labels: {raw}"
            labels = frozenset((k, re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m[0]], v)) for k, v in pairs)
            key = (match["name"], labels)
            assert key not in values, f"duplicate sample: {line}"
            values[key] = float(match["value"])
    return types, values


@folder_only
def test_exposition_of_a_store_after_commits_and_a_gc(store_url: str, make_checkpoint: Callable[[int], Path]):
    store = ModelStore.open(store_url)
    for seed in range(6):
        store.commit(make_checkpoint(seed), message=f"epoch {seed}")
    gc = collect_garbage(store, keep_versions=3, keep_min_versions=2)
    stats = store_stats(store)
    odd_url = 'file:///srv/models "prod"\\a'

    types, values = parse(prometheus_text(stats, labels={"store": odd_url}))

    store_label = ("store", odd_url)

    def value(name: str, **labels: str) -> float:
        return values[(f"sn46_modelstore_{name}", frozenset({store_label, *labels.items()}))]

    assert all(name.startswith("sn46_modelstore_") for name in types)
    assert all(name.endswith("_total") == (kind == "counter") for name, kind in types.items())
    assert value("storage_size_bytes") == stats.storage_bytes > 0
    assert (value("version_count", state="live"), value("version_count", state="collected")) == (3, 3)
    assert value("commits_total") == 6
    assert value("gc_runs_total") == 1
    assert value("gc_versions_deleted_total") == len(gc.collected) == 3
    assert value("gc_bytes_freed_total") == gc.bytes_freed > 0
    assert value("commit_latency_seconds") == stats.last_commit_latency_s > 0
    assert value("last_commit_timestamp_seconds") > 1.7e9


@folder_only
def test_an_empty_store_reports_zeros_and_leaves_out_what_it_cannot_know(store_url: str):
    stats = store_stats(ModelStore.open(store_url))

    types, values = parse(prometheus_text(stats))

    assert values[("sn46_modelstore_commits_total", frozenset())] == 0
    assert values[("sn46_modelstore_version_count", frozenset({("state", "live")}))] == 0
    assert "sn46_modelstore_commit_latency_seconds" not in types
    assert "sn46_modelstore_last_commit_timestamp_seconds" not in types
    with pytest.raises(ValueError, match="label name"):
        prometheus_text(stats, labels={"store url": "x"})
