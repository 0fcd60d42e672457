"""Helpers of the operations tests: run a job the production way, read what it recorded."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from sn46_pipelines.definitions import defs
from sn46_pipelines.defs.modelstore import model_store
from sn46_pipelines.defs.resources import ModelStoreResource

#: The operations jobs as the code location builds them for the test environment.
gc_job = defs.resolve_job_def("gc_job")
verify_chain_job = defs.resolve_job_def("verify_chain_job")
replication_check_job = defs.resolve_job_def("replication_check_job")

#: The test environment's GC policy: keep the newest 3, never fewer than 2 live, always protect v1.
ENV_GC = {"keep_versions": 3, "keep_min_versions": 2, "protect_tags": [1]}
VERSIONS = 8

#: For variations of a scenario: the ops never look at the backend, and the library's own tests cover
#: both, so the scenarios the issue names run on both backends and their variations on folders only.
folder_only = pytest.mark.parametrize("store_url", ["file"], indirect=True)


def run(
    job: dg.JobDefinition, instance: dg.DagsterInstance, config: dg.Config | None = None
) -> dg.ExecuteInProcessResult:
    """Run ``job`` once with the environment's ``model_store`` resource (and op config, if given)."""
    [op_name] = [node.name for node in job.graph.nodes]
    run_config = dg.RunConfig(ops={op_name: config}) if config is not None else None
    return job.execute_in_process(
        run_config=run_config,
        instance=instance,
        resources={"model_store": ModelStoreResource()},
        raise_on_error=False,
    )


def observed(instance: dg.DagsterInstance) -> dict[str, Any]:
    """Metadata of the newest ``model_store`` observation in the instance's history, as plain values."""
    [record] = instance.fetch_observations(model_store.key, limit=1).records
    return {key: value.value for key, value in record.asset_observation.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's error and its causes, as the UI shows them."""
    [failure] = result.get_step_failure_events()
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def retries(result: dg.ExecuteInProcessResult) -> int:
    """How many times a step was put up for retry in this run."""
    return sum(1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)


def with_fast_retries(
    job: dg.JobDefinition, *, max_retries: int = 2, delay: float = 0.05
) -> dg.JobDefinition:
    """The same ops as ``job``, retried after ``delay`` seconds instead of the production backoff."""
    policy = dg.RetryPolicy(max_retries=max_retries, delay=delay)
    return job.graph.to_job(name=job.name, op_retry_policy=policy)
