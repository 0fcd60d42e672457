"""The pin moves only to a model that passed the gate and, on its own validation rows, is no worse than the
one it replaces."""

from __future__ import annotations

import threading

import pytest

from sn46_pipelines.modelstore import ModelStore, read_pin, read_pins, set_pin
from sn46_pipelines.pricemodel.deploy import promote
from sn46_pipelines.pricemodel.layout import KIND


@pytest.fixture
def models(tmp_path) -> ModelStore:
    (tmp_path / "models").mkdir()
    return ModelStore.open(f"file://{tmp_path / 'models'}")


def commit_model(
    models: ModelStore,
    tmp_path,
    mape: float,
    *,
    passed: bool = True,
    kind: str = KIND,
    compared: tuple[int, float] | None = None,
    gate: bool = True,
) -> int:
    """A price-model record; ``compared`` is (the pinned counter, its MAPE on this model's rows)."""
    folder = tmp_path / f"ckpt-{mape}-{passed}-{kind}-{compared}"
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(f'{{"mape": {mape}}}')
    rules = {"sn46_mape": {"passed": passed}, "beats_zip_median_baseline": {"passed": True}}
    metadata = {"kind": kind, "metrics": {"mape": mape}}
    if gate:
        metadata["gate"] = {"passed": passed, "rules": rules}
    if compared is not None:
        metadata["compared_with"] = {"version_id": f"v{compared[0]:010d}", "mape": compared[1]}
    return models.commit(folder, metadata=metadata, retries=5).counter


def test_the_pin_moves_only_to_models_no_worse_on_the_same_rows(models, tmp_path):
    first = commit_model(models, tmp_path, 0.20)
    decision = promote(models, first, "prod")
    assert decision.moved and decision.previous is None and read_pin(models, "prod").counter == first

    worse = commit_model(models, tmp_path, 0.25, compared=(first, 0.22))
    decision = promote(models, worse, "prod")
    assert not decision.moved and "worse" in decision.reason and "same rows" in decision.reason
    assert (decision.candidate_mape, decision.previous_mape) == (0.25, 0.22)
    assert read_pin(models, "prod").counter == first

    # A lower recorded MAPE on other rows proves nothing: the pinned model scored better on these.
    lucky = commit_model(models, tmp_path, 0.18, compared=(first, 0.17))
    assert not promote(models, lucky, "prod").moved

    equal = commit_model(models, tmp_path, 0.21, compared=(first, 0.21))
    assert promote(models, equal, "prod").moved  # no worse is good enough: new data, same quality
    stale = commit_model(models, tmp_path, 0.10, compared=(first, 0.30))  # against a model no longer pinned
    decision = promote(models, stale, "prod")
    assert not decision.moved and f"compared with v{first:010d}" in decision.reason
    better = commit_model(models, tmp_path, 0.15, compared=(equal, 0.19))
    assert promote(models, better, "prod").moved and read_pin(models, "prod").counter == better
    assert not promote(models, better, "prod").moved  # already serving it: nothing to do


def test_a_model_that_failed_the_gate_or_has_none_or_is_not_a_price_model_is_never_pinned(models, tmp_path):
    failed = commit_model(models, tmp_path, 0.01, passed=False)
    decision = promote(models, failed, "prod")  # an empty pin moves only through the gate too
    assert not decision.moved and decision.reason.endswith("failed the deployment gate: sn46_mape")
    ungated = commit_model(models, tmp_path, 0.01, gate=False)
    assert "no deployment-gate verdict" in promote(models, ungated, "prod").reason
    other = commit_model(models, tmp_path, 0.01, kind="something-else")
    assert not promote(models, other, "prod").moved
    assert "prod" not in read_pins(models)


def test_force_moves_the_pin_anyway(models, tmp_path):
    good = commit_model(models, tmp_path, 0.10)
    promote(models, good, "prod")
    worse = commit_model(models, tmp_path, 0.30, passed=False)
    decision = promote(models, worse, "prod", force=True)
    assert decision.moved and decision.reason.startswith("forced")
    assert read_pin(models, "prod").counter == worse


def test_tracking_mode_makes_the_pin_follow_the_head(models, tmp_path):
    first = commit_model(models, tmp_path, 0.2)
    set_pin(models, "local", first)
    assert promote(models, first, "local", mode="tracking").moved
    pin = read_pin(models, "local")
    assert pin.mode == "tracking" and pin.counter is None
    assert not promote(models, first, "local", mode="tracking").moved
    with pytest.raises(ValueError):
        promote(models, first, "local", mode="sometimes")


def test_racing_deployers_leave_the_pin_on_a_model_that_passed(models, tmp_path):
    counters = [commit_model(models, tmp_path, mape) for mape in (0.30, 0.20, 0.10, 0.25)]
    barrier = threading.Barrier(len(counters))
    decisions = []

    def deploy(counter: int) -> None:
        barrier.wait()
        decisions.append(promote(models, counter, "prod"))

    threads = [threading.Thread(target=deploy, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(decisions) == 4 and any(d.moved for d in decisions)
    assert read_pin(models, "prod").counter in counters
    assert read_pin(models, "prod").revision == sum(d.moved for d in decisions)  # no lost update


def test_a_new_model_is_scored_against_the_pinned_one_on_its_own_validation_rows(
    models, trained, listings, tmp_path
):
    from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
    from sn46_pipelines.pricemodel.train import TrainConfig, train
    from tests.pricemodel.pricemodel_helpers import TINY

    first = commit_checkpoint(models, trained, tmp_path / "first", pin="prod")
    assert "compared_with" not in first.metadata  # nothing pinned yet
    assert promote(models, first.counter, "prod").moved  # the empty pin moved through the gate
    second = train(listings, TrainConfig(**{**TINY, "seed": 1}))
    record = commit_checkpoint(models, second, tmp_path / "second", pin="prod")
    compared = record.metadata["compared_with"]
    # Same listings, so the same validation rows: the pinned model's score there is its own validation MAPE.
    assert compared == {"version_id": first.version_id, "mape": pytest.approx(trained.metrics["mape"])}
    decision = promote(models, record.counter, "prod")
    assert decision.previous_mape == compared["mape"]
    assert decision.moved == (second.metrics["mape"] <= compared["mape"])
