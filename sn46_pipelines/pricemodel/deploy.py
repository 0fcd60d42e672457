"""Moving a deployment pin to a new price model, only when that cannot make serving worse.

The rule, in pinned mode: the candidate must have passed the deployment gate
(:mod:`.gate`: SN46's rules, the verdict recorded in its commit metadata), and
when the pin already points at a model, the candidate must have been scored
against that very model on the candidate's own validation rows (done when
the candidate was committed: :func:`compare_with_pin`) and be no worse there.
Two MAPEs measured on different rows say nothing about which model is
better, so a candidate compared with another model than the one pinned now
is refused: train again, or ``force``. An empty pin moves only through the
gate. ``force`` skips every rule, for a deliberate rollback. In tracking mode
the pin follows the head, so there is nothing to decide: the pin is only
switched to tracking.

Decisions read the hash-chained records, not the Dagster instance, so the
same call works from ``deploy_job``, a script or a notebook.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..modelstore import ModelStore, VersionNotFoundError, read_pin, set_pin
from ..modelstore.pins import PinMode
from .layout import KIND
from .metrics import price_metrics


@dataclass(frozen=True, slots=True)
class PinDecision:
    """What :func:`promote` did and why."""

    pin: str
    mode: PinMode
    moved: bool
    reason: str
    candidate: str
    candidate_mape: float | None
    previous: str | None
    previous_mape: float | None
    """The pinned model's MAPE on the candidate's validation rows (None when not compared)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (the mode as its string), for JSON and Dagster metadata."""
        return {**asdict(self), "mode": self.mode.value}


def compare_with_pin(store: ModelStore, pin: str, validation: Any) -> dict[str, Any] | None:
    """The model ``pin`` points at now, scored on ``validation`` (a candidate's prepared validation rows).

    ``None`` when the pin does not exist or tracks the head. A pinned model
    that cannot be loaded (an older checkpoint format) is reported with the
    reason instead of a MAPE, which :func:`promote` treats as "not compared".
    """
    from ..modelstore import Checkpoint, ModelStoreError
    from .predictor import load_predictor

    try:
        current = read_pin(store, pin)
    except VersionNotFoundError:
        return None
    if current.mode != PinMode.PINNED or current.counter is None:
        return None
    record = store.get(current.counter)
    with tempfile.TemporaryDirectory(prefix="sn46-pinned-") as folder:
        try:
            store.checkout(record.counter, folder)
            predictor = load_predictor(Checkpoint(record=record, root=Path(folder)))
        except (ModelStoreError, ValueError, KeyError, RuntimeError) as exc:
            return {"version_id": record.version_id, "error": f"cannot load {record.version_id}: {exc}"}
        prices = predictor.predict(validation)
    actual = validation.column("price").to_numpy(zero_copy_only=False)
    if not np.isfinite(prices).all():
        return {"version_id": record.version_id, "error": f"{record.version_id} gives non-finite prices"}
    return {"version_id": record.version_id, "mape": price_metrics(actual, prices)["mape"]}


def promote(
    store: ModelStore,
    candidate: int | str,
    pin: str,
    *,
    mode: PinMode = PinMode.PINNED,
    force: bool = False,
) -> PinDecision:
    """Point ``pin`` at ``candidate`` if the rule above allows it (or ``force``); report the decision.

    Moving a pin is a compare-and-swap in the model store, so two deployers
    never corrupt it; the comparison itself is not atomic with the move, so
    deployments of one pin should run one at a time (the Dagster asset uses
    a concurrency pool for that).
    """
    mode = PinMode(mode)  # a plain "pinned" or "tracking" (settings, metadata) is accepted too
    record = store.get(candidate)
    try:
        current = read_pin(store, pin)
    except VersionNotFoundError:
        current = None
    previous = (
        store.get(current.counter)
        if current is not None and current.mode == PinMode.PINNED and current.counter is not None
        else None
    )
    meta = record.metadata if record.metadata.get("kind") == KIND else {}
    candidate_mape = _number(meta.get("metrics", {}).get("mape"))
    compared = meta.get("compared_with") or {}
    same_rows = previous is not None and compared.get("version_id") == previous.version_id
    previous_mape = _number(compared.get("mape")) if same_rows else None

    def decided(moved: bool, reason: str) -> PinDecision:
        return PinDecision(
            pin=pin,
            mode=mode,
            moved=moved,
            reason=reason,
            candidate=record.version_id,
            candidate_mape=candidate_mape,
            previous=previous.version_id if previous else None,
            previous_mape=previous_mape,
        )

    if mode == PinMode.TRACKING:
        if current is not None and current.mode == PinMode.TRACKING:
            return decided(False, "tracking mode: the pin already follows the head")
        set_pin(store, pin, track=True)
        return decided(True, "tracking mode: the pin now follows the head")
    if previous is not None and previous.counter == record.counter:
        return decided(False, f"{pin} already serves {record.version_id}")
    if not force:
        refusal = _refusal(record.version_id, meta, candidate_mape, previous, compared, previous_mape)
        if refusal:
            return decided(False, refusal)
    set_pin(store, pin, record.counter)
    if force:
        return decided(True, f"forced: {pin} moved to {record.version_id}")
    if previous is None:
        return decided(True, f"passed the gate; {pin} had no pinned version, now {record.version_id}")
    return decided(
        True,
        f"passed the gate, and MAPE {candidate_mape:.4f} is no worse than {previous.version_id}'s "
        f"{previous_mape:.4f} on the same validation rows; {pin} moved to {record.version_id}",
    )


def _refusal(
    version: str,
    meta: dict[str, Any],
    candidate_mape: float | None,
    previous: Any,
    compared: dict[str, Any],
    previous_mape: float | None,
) -> str | None:
    """Why the candidate may not replace the pinned model, or None when it may."""
    if candidate_mape is None:
        return f"{version} is not a price model commit"
    gate = meta.get("gate")
    if not isinstance(gate, dict):
        return f"{version} has no deployment-gate verdict (committed before the gate existed)"
    if gate.get("passed") is not True:
        failed = [name for name, rule in gate.get("rules", {}).items() if not rule.get("passed")]
        return f"{version} failed the deployment gate: {', '.join(failed) or 'no rule passed'}"
    if previous is None:
        return None
    if previous_mape is None:
        other = compared.get("version_id")
        why = compared.get("error") or (f"it was compared with {other}" if other else "no comparison")
        return (
            f"{version} was not scored against the pinned {previous.version_id} on its validation rows "
            f"({why}); train again, or force"
        )
    if candidate_mape > previous_mape:
        return (
            f"validation MAPE {candidate_mape:.4f} is worse than the pinned {previous.version_id}'s "
            f"{previous_mape:.4f} on the same rows"
        )
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
