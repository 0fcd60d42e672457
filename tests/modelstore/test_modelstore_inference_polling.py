"""InferenceClient's poll schedule (jittered interval and backoff) and its check of the target at start."""

from __future__ import annotations

import random
import statistics

import pytest

from sn46_pipelines.modelstore import (
    ModelStore,
    VersionCollectedError,
    VersionNotFoundError,
    collect_garbage,
    set_pin,
)
from sn46_pipelines.modelstore.inference import InferenceClient
from sn46_pipelines.modelstore.loaders import json_loader
from sn46_pipelines.objectstore import AccessDeniedError, StoreOutageError

DRAWS = 2_000


class Unreachable:
    """An object store every call of which fails with ``error``: an outage unless told otherwise."""

    url = "s3://unreachable"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or StoreOutageError("simulated outage: connection refused")

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise self.error

        return fail


def down_client(tmp_path, seed: int = 0, **kwargs) -> InferenceClient:
    """A client whose every poll fails, with a seeded jitter source."""
    return InferenceClient(
        ModelStore(Unreachable()),
        "head",
        loader=json_loader(),
        cache_dir=tmp_path / "cache",
        rng=random.Random(seed),
        **{"poll_interval": 10.0, "max_backoff": 300.0, **kwargs},
    )


def test_the_healthy_interval_is_spread_by_ten_percent(tmp_path):
    client = down_client(tmp_path)
    delays = [client.next_delay() for _ in range(DRAWS)]
    assert all(9.0 <= d <= 11.0 for d in delays)
    assert min(delays) < 9.1 and max(delays) > 10.9  # the whole band is used
    assert statistics.fmean(delays) == pytest.approx(10.0, abs=0.1)  # the mean stays the interval


def test_backoff_is_equal_jitter_within_half_to_all_of_the_capped_backoff(tmp_path):
    client = down_client(tmp_path)
    for failures in range(1, 9):
        assert not client.poll()
        assert client.health().consecutive_failures == failures
        backoff = min(300.0, 10.0 * 2**failures)  # 20, 40, 80, 160, then max_backoff
        delays = [client.next_delay() for _ in range(DRAWS)]
        assert all(backoff / 2 <= d <= backoff for d in delays), failures
        assert min(delays) < 0.55 * backoff and max(delays) > 0.95 * backoff, failures
    assert max(client.next_delay() for _ in range(DRAWS)) <= client.max_backoff


def test_one_seed_repeats_its_delays_and_a_fleet_does_not_poll_in_lockstep(tmp_path):
    def first_delays(seed: int) -> list[float]:
        client = down_client(tmp_path, seed)
        for _ in range(3):
            client.poll()
        return [client.next_delay() for _ in range(5)]

    assert first_delays(7) == first_delays(7)
    # Fifty nodes that failed the same three polls of one outage: their next polls spread over [40, 80] s.
    fleet = [first_delays(seed)[0] for seed in range(50)]
    assert len(set(fleet)) == 50 and all(40.0 <= d <= 80.0 for d in fleet)
    assert max(fleet) - min(fleet) > 30.0


def _target_client(store: ModelStore, target, tmp_path) -> InferenceClient:
    return InferenceClient(store, target, loader=json_loader(), cache_dir=tmp_path / "cache")


def test_a_fixed_version_not_committed_yet_is_refused_at_start(mstore: ModelStore, make_checkpoint, tmp_path):
    with pytest.raises(VersionNotFoundError, match="no versions yet"):
        _target_client(mstore, 0, tmp_path).check_target()
    mstore.commit(make_checkpoint(0))
    mstore.commit(make_checkpoint(1))
    assert _target_client(mstore, 1, tmp_path).check_target() is None
    assert _target_client(mstore, "v0000000000", tmp_path).check_target() is None
    with pytest.raises(VersionNotFoundError) as refused:
        _target_client(mstore, 99, tmp_path).check_target()
    assert str(refused.value) == (
        f"v0000000099 is not in {mstore.url} (the newest is v0000000001); a fixed version must already "
        "be committed: serve head or a pin to follow new versions"
    )


def test_a_collected_version_is_refused_at_start(mstore: ModelStore, make_checkpoint, tmp_path):
    for seed in range(3):
        mstore.commit(make_checkpoint(seed))
    collect_garbage(mstore, keep_versions=1, orphan_grace=0)
    assert mstore.is_collected(0)
    with pytest.raises(VersionCollectedError, match=r"v0000000000 .* was garbage-collected"):
        _target_client(mstore, 0, tmp_path).check_target()
    assert _target_client(mstore, 2, tmp_path).check_target() is None


def test_a_pin_or_head_that_does_not_resolve_yet_is_waited_for(mstore: ModelStore, make_checkpoint, tmp_path):
    assert _target_client(mstore, "head", tmp_path).check_target() == (
        f"waiting for head: {mstore.url}: the store has no versions yet"
    )
    assert _target_client(mstore, "pin:prod", tmp_path).check_target() == (
        f"waiting for pin:prod: {mstore.url}: no pin named 'prod'"
    )
    set_pin(mstore, "prod", mstore.commit(make_checkpoint(0)).counter)
    assert _target_client(mstore, "pin:prod", tmp_path).check_target() is None
    assert _target_client(mstore, "head", tmp_path).check_target() is None


def test_an_outage_at_start_is_waited_for_whatever_the_target(tmp_path):
    for target in ("head", "pin:prod", 5):
        line = _target_client(ModelStore(Unreachable()), target, tmp_path).check_target()
        assert line == "waiting for the store: simulated outage: connection refused"


def test_a_store_a_person_must_fix_is_refused_at_start(tmp_path):
    denied = ModelStore(Unreachable(AccessDeniedError("s3://unreachable: access denied")))
    with pytest.raises(AccessDeniedError, match="access denied"):
        _target_client(denied, "pin:prod", tmp_path).check_target()
