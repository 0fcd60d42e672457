"""Moving a deployment pin to a new price model, only when that cannot make serving worse.

The rule, in pinned mode: the candidate must have beaten the zip-median
baseline (the blocking check's verdict, recorded in its commit metadata) and
its validation MAPE must be no worse than the currently pinned model's;
``force`` skips both for a deliberate rollback or a changed validation set.
In tracking mode the pin follows the head, so there is nothing to decide:
the pin is only switched to tracking.

Decisions read the hash-chained records, not the Dagster instance, so the
same call works from ``deploy_job``, a script or a notebook.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..modelstore import ModelStore, VersionNotFoundError, read_pin, set_pin
from ..modelstore.pins import PINNED, TRACKING
from .checkpoint import KIND


@dataclass(frozen=True, slots=True)
class PinDecision:
    """What :func:`promote` did and why."""

    pin: str
    mode: str
    moved: bool
    reason: str
    candidate: str
    candidate_mape: float | None
    previous: str | None
    previous_mape: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promote(
    store: ModelStore,
    candidate: int | str,
    pin: str,
    *,
    mode: Literal["pinned", "tracking"] = PINNED,
    force: bool = False,
) -> PinDecision:
    """Point ``pin`` at ``candidate`` if the rule above allows it (or ``force``); report the decision.

    Moving a pin is a compare-and-swap in the model store, so two deployers
    never corrupt it; the comparison itself is not atomic with the move, so
    deployments of one pin should run one at a time (the Dagster asset uses
    a concurrency pool for that).
    """
    if mode not in (PINNED, TRACKING):
        raise ValueError(f"mode must be {PINNED!r} or {TRACKING!r}, not {mode!r}")
    record = store.get(candidate)
    try:
        current = read_pin(store, pin)
    except VersionNotFoundError:
        current = None
    previous = store.get(current.counter) if current is not None and current.mode == PINNED else None
    candidate_mape = _mape(record.metadata)
    previous_mape = _mape(previous.metadata) if previous is not None else None

    def decided(moved: bool, reason: str) -> PinDecision:
        return PinDecision(
            pin=pin, mode=mode, moved=moved, reason=reason, candidate=record.version_id,
            candidate_mape=candidate_mape, previous=previous.version_id if previous else None,
            previous_mape=previous_mape,
        )

    if mode == TRACKING:
        if current is not None and current.mode == TRACKING:
            return decided(False, "tracking mode: the pin already follows the head")
        set_pin(store, pin, track=True)
        return decided(True, "tracking mode: the pin now follows the head")
    if previous is not None and previous.counter == record.counter:
        return decided(False, f"{pin} already serves {record.version_id}")
    if not force:
        if candidate_mape is None:
            return decided(False, f"{record.version_id} is not a price model commit")
        if record.metadata.get("beats_baseline") is not True:
            return decided(False, f"{record.version_id} did not beat the zip-median baseline")
        if previous_mape is not None and candidate_mape > previous_mape:
            return decided(
                False,
                f"validation MAPE {candidate_mape:.4f} is worse than the pinned {previous.version_id}'s "
                f"{previous_mape:.4f}",
            )
    set_pin(store, pin, record.counter)
    if force:
        return decided(True, f"forced: {pin} moved to {record.version_id}")
    if previous is None:
        return decided(True, f"{pin} had no pinned version; now {record.version_id}")
    return decided(True, f"validation MAPE no worse than {previous.version_id}'s; {pin} moved to {record.version_id}")


def _mape(metadata: dict[str, Any]) -> float | None:
    """The validation MAPE of a price-model commit; ``None`` for any other commit."""
    value = metadata.get("metrics", {}).get("mape") if metadata.get("kind") == KIND else None
    return float(value) if isinstance(value, (int, float)) else None
