"""``verify_chain_job`` on both backends: a valid chain, a tampered record, rot only a deep check sees."""

from __future__ import annotations

import json

import dagster as dg

from sn46_pipelines.defs.modelstore import VerifyConfig
from sn46_pipelines.modelstore import ModelStore
from sn46_pipelines.modelstore.layout import blob_key, record_key
from sn46_pipelines.modelstore.record import canonical_json
from tests.defs.modelstore.operations_helpers import (
    VERSIONS,
    failure_message,
    folder_only,
    observed,
    retries,
    run,
    verify_chain_job,
)


@folder_only
def test_a_valid_chain_passes_and_is_recorded(instance: dg.DagsterInstance, chain: ModelStore):
    result = run(verify_chain_job, instance)

    assert result.success
    seen = observed(instance)
    assert seen["chain_valid"] is True and seen["verify_deep"] is False
    assert (seen["first_bad_version"], seen["corruption_kind"]) == (None, None)
    assert (seen["versions"], seen["versions_live"], seen["versions_collected"]) == (VERSIONS, VERSIONS, 0)


def test_a_tampered_record_fails_the_run_naming_the_first_bad_version(
    instance: dg.DagsterInstance, chain: ModelStore
):
    raw = json.loads(chain.objects.get(record_key(3)))
    chain.objects.put(record_key(3), canonical_json({**raw, "message": "rewritten history"}))

    result = run(verify_chain_job, instance)

    assert not result.success
    assert "chain corrupt from v0000000003 (bad_record_hash)" in failure_message(result)
    assert retries(result) == 0  # a corrupt chain is an answer, not an outage
    [failure] = result.get_step_failure_events()
    failure_metadata = failure.step_failure_data.user_failure_data.metadata
    assert failure_metadata["first_bad_version"].value == "v0000000003"
    seen = observed(instance)
    assert (seen["chain_valid"], seen["first_bad_version"], seen["corruption_kind"]) == (
        False,
        "v0000000003",
        "bad_record_hash",
    )


@folder_only
def test_a_rotten_blob_of_the_same_size_passes_shallow_and_fails_deep(
    instance: dg.DagsterInstance, chain: ModelStore
):
    sha = chain.get(5).manifest["model.pt"].sha256
    chain.objects.put(blob_key(sha), b"rotten-!!" * 100)  # same length as "weights-5" * 100

    shallow = run(verify_chain_job, instance)
    deep = run(verify_chain_job, instance, VerifyConfig(deep=True))

    assert shallow.success
    assert not deep.success
    assert "chain corrupt from v0000000005 (blob_hash_mismatch)" in failure_message(deep)
    seen = observed(instance)
    assert (seen["verify_deep"], seen["first_bad_version"]) == (True, "v0000000005")
    assert seen["bytes_hashed"] > 0
