"""GC never overlaps another GC: the store's lease across hosts, the ``modelstore_gc`` pool within Dagster."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from sn46_pipelines.defs.modelstore import GC_POOL
from sn46_pipelines.modelstore import ModelStore, StoreBusyError
from sn46_pipelines.modelstore.lease import Lease
from tests.defs.modelstore.operations_helpers import (
    folder_only,
    gc_job,
    observed,
    retries,
    run,
    with_fast_retries,
)


@folder_only
def test_gc_retries_while_another_gc_holds_the_lease(
    instance: dg.DagsterInstance, chain: ModelStore, monkeypatch: pytest.MonkeyPatch
):
    other_gc = Lease(chain.objects).acquire()  # another GC, on another host
    acquire = Lease.acquire

    def acquire_then_other_gc_finishes(lease: Lease) -> Lease:
        try:
            return acquire(lease)
        except StoreBusyError:
            assert chain.collected_counters() == set()
            other_gc.release()
            raise

    monkeypatch.setattr(Lease, "acquire", acquire_then_other_gc_finishes)

    result = run(with_fast_retries(gc_job), instance)

    assert result.success and retries(result) == 1
    retry = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert "another GC holds the lease" in retry.event_specific_data.error.cause.message
    assert chain.collected_counters() == {0, 2, 3, 4}
    assert observed(instance)["gc_versions_collected"] == 4


@folder_only
def test_a_gc_run_waits_for_the_pool_slot_another_gc_run_holds(chain: ModelStore):
    with dg.instance_for_test() as instance:
        slots = instance.event_log_storage
        slots.set_concurrency_slots(GC_POOL, 1)
        slots.claim_concurrency_slot(GC_POOL, "another-gc-run", "its_gc_step")
        finished: list[dg.ExecuteInProcessResult] = []
        gc_run = threading.Thread(target=lambda: finished.append(run(gc_job, instance)))
        gc_run.start()
        deadline = time.monotonic() + 60
        while not _queued_behind(instance, "another-gc-run") and time.monotonic() < deadline:
            time.sleep(0.2)

        assert chain.collected_counters() == set()  # nothing collected while the other GC run holds the slot
        slots.free_concurrency_slot_for_step("another-gc-run", "its_gc_step")
        gc_run.join(60)

        [result] = finished
        assert result.success
        assert any(f"blocked by limit for pool {GC_POOL}" in (e.message or "") for e in result.all_events)
        assert chain.collected_counters() == {0, 2, 3, 4}
        assert slots.get_concurrency_info(GC_POOL).claimed_slots == []


def _queued_behind(instance: dg.DagsterInstance, holder: str) -> bool:
    """True once a step of a run other than ``holder`` waits in the GC pool's queue."""
    pending = instance.event_log_storage.get_concurrency_info(GC_POOL).pending_steps
    return any(step.run_id != holder for step in pending)
