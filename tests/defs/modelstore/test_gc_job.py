"""``gc_job`` on both backends: the environment's policy, presets, pins that survive, final refusals."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from sn46_pipelines.defs.modelstore import GCConfig
from sn46_pipelines.modelstore import ModelStore, set_pin, verify
from sn46_pipelines.modelstore.stats import store_stats
from tests.defs.modelstore.operations_helpers import (
    failure_message,
    folder_only,
    gc_job,
    observed,
    retries,
    run,
)


def test_gc_applies_the_environment_policy_and_keeps_the_pinned_version(
    instance: dg.DagsterInstance, chain: ModelStore, tmp_path: Path
):
    set_pin(chain, "prod", 2)
    before = store_stats(chain)

    result = run(gc_job, instance)

    assert result.success
    # Newest 3 (v5-v7), v1 protected by the environment, v2 pinned: the rest is collected.
    assert chain.collected_counters() == {0, 3, 4}
    seen = observed(instance)
    assert seen["gc_collected"] == [0, 3, 4] and seen["gc_versions_collected"] == 3
    assert (seen["versions_live"], seen["versions_collected"], seen["versions"]) == (5, 3, 8)
    assert (seen["keep_versions"], seen["keep_min_versions"], seen["protect_tags"]) == (3, 2, [1])
    after = store_stats(chain)
    assert seen["gc_bytes_freed"] == before.blob_bytes - after.blob_bytes > 0
    assert seen["storage_bytes"] == after.storage_bytes
    checked_out = chain.checkout("pin:prod", tmp_path / "prod")
    assert checked_out.counter == 2
    assert (tmp_path / "prod" / "model.pt").read_bytes() == b"weights-2" * 100
    assert verify(chain, deep=True).valid


@folder_only
def test_a_preset_by_name_in_a_dry_run_reports_the_plan_and_deletes_nothing(
    instance: dg.DagsterInstance, chain: ModelStore
):
    keys = {info.key for info in chain.objects.list()}

    result = run(gc_job, instance, GCConfig(preset="aggressive", dry_run=True))

    assert result.success
    seen = observed(instance)
    # aggressive keeps the newest 5 (v3-v7); the environment still protects v1.
    assert (seen["preset"], seen["keep_versions"], seen["keep_min_versions"]) == ("aggressive", 5, 3)
    assert seen["gc_dry_run"] is True and seen["gc_collected"] == [0, 2]
    assert seen["gc_bytes_freed"] > 0
    assert {info.key for info in chain.objects.list()} == keys
    assert chain.collected_counters() == set()


@folder_only
def test_run_config_can_protect_more_and_keep_fewer(instance: dg.DagsterInstance, chain: ModelStore):
    result = run(gc_job, instance, GCConfig(keep_versions=2, keep_min_versions=1, protect_tags=[4]))

    assert result.success
    assert chain.collected_counters() == {0, 2, 3, 5}  # v1 (environment) and v4 (run) protected, v6-v7 newest
    assert observed(instance)["protect_tags"] == [1, 4]


@folder_only
def test_an_impossible_policy_fails_at_once_without_retries_and_touches_nothing(
    instance: dg.DagsterInstance, chain: ModelStore
):
    keys = {info.key for info in chain.objects.list()}

    result = run(gc_job, instance, GCConfig(preset="moderate", keep_versions=4))

    assert not result.success
    assert "keep_min_versions (5) exceeds keep_versions (4)" in failure_message(result)
    assert retries(result) == 0
    assert {info.key for info in chain.objects.list()} == keys
