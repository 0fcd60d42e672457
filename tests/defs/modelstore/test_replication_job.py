"""``replication_check_job`` on both backends: lag within and past the RPO, repair, a diverged replica."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from sn46_pipelines.defs.modelstore import RPO_SECONDS, ReplicationConfig
from sn46_pipelines.modelstore import ModelStore, verify
from sn46_pipelines.modelstore.replication import check_replication
from tests.defs.modelstore.operations_helpers import (
    VERSIONS,
    failure_message,
    folder_only,
    observed,
    replication_check_job,
    retries,
    run,
)


@pytest.fixture
def replica(chain: ModelStore, replica_url: str, make_checkpoint: Callable[[int], Path]) -> ModelStore:
    """A replica synced at v5, then two more commits on the primary: it lags two versions."""
    replica = ModelStore.open(replica_url)
    assert check_replication(ModelStore.open(chain.url), replica, repair=True).in_sync
    for seed in (VERSIONS, VERSIONS + 1):
        chain.commit(make_checkpoint(seed), message=f"epoch {seed}")
    return replica


@folder_only
def test_a_replica_lagging_within_the_rpo_passes_and_its_lag_is_recorded(
    instance: dg.DagsterInstance, replica: ModelStore
):
    result = run(replication_check_job, instance)

    assert result.success
    seen = observed(instance)
    assert (seen["replica_in_sync"], seen["replica_lag_versions"]) == (False, 2)
    assert seen["rpo_seconds"] == RPO_SECONDS
    assert 0 < seen["replica_lag_seconds"] < RPO_SECONDS
    assert (seen["primary_head"], seen["replica_head"]) == (VERSIONS + 1, VERSIONS - 1)


def test_a_replica_lagging_past_the_rpo_fails_the_run(instance: dg.DagsterInstance, replica: ModelStore):
    result = run(replication_check_job, instance, ReplicationConfig(rpo_seconds=0))

    assert not result.success
    message = failure_message(result)
    assert f"replica {replica.url} is 2 versions and" in message and "past the RPO of 0 s" in message
    assert retries(result) == 0
    assert observed(instance)["replica_lag_versions"] == 2


@folder_only
def test_repair_brings_the_replica_in_sync(
    instance: dg.DagsterInstance, chain: ModelStore, replica: ModelStore
):
    result = run(replication_check_job, instance, ReplicationConfig(repair=True, rpo_seconds=0))

    assert result.success
    seen = observed(instance)
    assert (seen["replica_in_sync"], seen["replica_lag_versions"], seen["repaired_records"]) == (True, 0, 2)
    assert replica.head().record_hash == chain.head().record_hash
    assert verify(replica, deep=True).valid


@folder_only
def test_a_diverged_replica_fails_and_is_not_overwritten(
    instance: dg.DagsterInstance,
    chain: ModelStore,
    replica: ModelStore,
    make_checkpoint: Callable[[int], Path],
):
    forked = replica.commit(make_checkpoint(99), message="written to the replica by mistake")

    result = run(replication_check_job, instance, ReplicationConfig(repair=True))

    assert not result.success
    assert f"{replica.url} diverges from {chain.url} at v{VERSIONS:010d}" in failure_message(result)
    assert retries(result) == 0
    assert replica.head().record_hash == forked.record_hash
