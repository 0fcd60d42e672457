"""The pin moves only to a model that passed the check and is no worse than the one it replaces."""

from __future__ import annotations

import threading

import pytest

from sn46_pipelines.modelstore import ModelStore, read_pin, read_pins, set_pin
from sn46_pipelines.pricemodel.checkpoint import KIND
from sn46_pipelines.pricemodel.deploy import promote


@pytest.fixture
def models(tmp_path) -> ModelStore:
    (tmp_path / "models").mkdir()
    return ModelStore.open(f"file://{tmp_path / 'models'}")


def commit_model(models: ModelStore, tmp_path, mape: float, *, beats_baseline: bool = True, kind: str = KIND) -> int:
    folder = tmp_path / f"ckpt-{mape}-{beats_baseline}-{kind}"
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(f'{{"mape": {mape}}}')
    metadata = {"kind": kind, "metrics": {"mape": mape}, "beats_baseline": beats_baseline}
    return models.commit(folder, metadata=metadata, retries=5).counter


def test_the_pin_moves_only_to_no_worse_models(models, tmp_path):
    first = commit_model(models, tmp_path, 0.20)
    decision = promote(models, first, "prod")
    assert decision.moved and decision.previous is None and read_pin(models, "prod").counter == first

    worse = commit_model(models, tmp_path, 0.25)
    decision = promote(models, worse, "prod")
    assert not decision.moved and "worse" in decision.reason
    assert (decision.candidate_mape, decision.previous_mape) == (0.25, 0.20)
    assert read_pin(models, "prod").counter == first

    equal = commit_model(models, tmp_path, 0.20 + 0.0)
    assert promote(models, equal, "prod").moved  # no worse is good enough: new data, same quality
    better = commit_model(models, tmp_path, 0.15)
    assert promote(models, better, "prod").moved and read_pin(models, "prod").counter == better
    assert not promote(models, better, "prod").moved  # already serving it: nothing to do


def test_a_model_that_failed_the_check_or_is_not_a_price_model_is_never_pinned(models, tmp_path):
    failed = commit_model(models, tmp_path, 0.01, beats_baseline=False)
    decision = promote(models, failed, "prod")
    assert not decision.moved and "baseline" in decision.reason
    other = commit_model(models, tmp_path, 0.01, kind="something-else")
    assert not promote(models, other, "prod").moved
    assert "prod" not in read_pins(models)


def test_force_moves_the_pin_anyway(models, tmp_path):
    good = commit_model(models, tmp_path, 0.10)
    promote(models, good, "prod")
    worse = commit_model(models, tmp_path, 0.30, beats_baseline=False)
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

