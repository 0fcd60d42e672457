"""Checks on a run's aggregates, before anything downstream (views, training) reads them.

Plain functions over :class:`~.aggregates.Aggregates`, so they are tested
without Dagster; the ``listing_aggregates`` asset reports each as an asset
check. Each returns a :class:`CheckOutcome` whose description names what is
wrong, for the person reading the Dagster UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow.compute as pc

from .aggregates import CONTRACT, KEYS, Aggregates

#: How many offending values a failure description quotes.
SHOWN = 5


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The result of one check: passed or not, why, and numbers to plot."""

    passed: bool
    description: str
    metadata: dict[str, int] = field(default_factory=dict)


def check_schema(aggregates: Aggregates) -> CheckOutcome:
    """Every table has the columns of :data:`CONTRACT`, with their types."""
    wrong = []
    for name, columns in CONTRACT.items():
        schema = aggregates[name].schema
        for column, expected in columns.items():
            index = schema.get_field_index(column)
            if index < 0:
                wrong.append(f"{name}.{column} missing")
            elif schema.field(index).type != expected:
                wrong.append(f"{name}.{column} is {schema.field(index).type}, expected {expected}")
    return _outcome(wrong, "every table has its contract columns", "schema differs from the contract")


def check_keys(aggregates: Aggregates) -> CheckOutcome:
    """No key column (see :data:`KEYS`) holds a null."""
    nulls = {
        f"{name}.{column}": aggregates[name].column(column).null_count
        for name, columns in KEYS.items()
        for column in columns
    }
    wrong = [f"{column}: {count} nulls" for column, count in nulls.items() if count]
    return _outcome(wrong, "no null keys", "null keys", metadata={"null_keys": sum(nulls.values())})


def check_scores(aggregates: Aggregates) -> CheckOutcome:
    """Every hotkey has a score, within [0, 1]."""
    scores = aggregates["miner_scores"]
    score = scores.column("score")
    bad = pc.invert(pc.fill_null(pc.and_(pc.greater_equal(score, 0.0), pc.less_equal(score, 1.0)), False))
    offenders = scores.filter(bad)
    wrong = [f"{h}: {s}" for h, s in zip(offenders["hotkey"].to_pylist(), offenders["score"].to_pylist())]
    return _outcome(wrong, "every score is in [0, 1]", "scores outside [0, 1] or missing")


def check_known_hotkeys(aggregates: Aggregates, partitions: Iterable[str]) -> CheckOutcome:
    """Every scored hotkey is a ``miner_hotkeys`` partition: curated data no ingest run made is refused."""
    unknown = sorted(set(aggregates["miner_scores"].column("hotkey").to_pylist()) - set(partitions))
    return _outcome(
        unknown,
        "every hotkey is a known partition",
        "hotkeys that are not miner_hotkeys partitions",
        metadata={"unknown_hotkeys": len(unknown)},
    )


def check_row_counts(aggregates: Aggregates, reported: Mapping[str, int | None]) -> CheckOutcome:
    """Each hotkey's curated rows (accepted plus copies) equal what its last ``miner_listings`` run reported.

    ``reported`` maps hotkey -> ``curated_rows`` of its latest materialization
    that recorded one (None: no such materialization). A difference means the
    aggregates read something other than what ingest committed, or ingest
    committed again since: either way, not a basis for scores.
    """
    scores = aggregates["miner_scores"]
    counted = dict(zip(scores["hotkey"].to_pylist(), scores["curated_rows"].to_pylist(), strict=True))
    wrong = []
    for hotkey, rows in sorted(counted.items()):
        expected = reported.get(hotkey)
        if expected is None:
            wrong.append(f"{hotkey}: no miner_listings materialization reports curated_rows")
        elif expected != rows:
            wrong.append(f"{hotkey}: {rows} curated rows, miner_listings reported {expected}")
    return _outcome(
        wrong,
        "curated rows reconcile with miner_listings",
        "row counts differ from miner_listings",
        metadata={"hotkeys_checked": len(counted), "mismatches": len(wrong)},
    )


def _outcome(wrong: list[str], ok: str, failed: str, metadata: dict[str, int] | None = None) -> CheckOutcome:
    if not wrong:
        return CheckOutcome(True, ok, metadata or {})
    shown = "; ".join(wrong[:SHOWN]) + (f"; and {len(wrong) - SHOWN} more" if len(wrong) > SHOWN else "")
    return CheckOutcome(False, f"{failed}: {shown}", metadata or {})
