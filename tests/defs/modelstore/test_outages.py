"""S3 outages during a run: a short one is retried and loses nothing, a persistent one fails the run clearly.

The outage is injected in-process: botocore's ``before-send`` hook raises the
connection error an unreachable endpoint gives, on every attempt of a call,
so botocore's own retries are spent first (without their back-off sleeps) and
the store sees what a real outage leaves it: a ``StoreOutageError``.
Everything else (the moto S3 server, the store, the Dagster run and its
retries) is real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import ExponentialBackoff

from sn46_pipelines.defs.modelstore import model_store
from sn46_pipelines.defs.resources import ModelStoreResource
from sn46_pipelines.modelstore import ModelStore, set_pin, verify
from tests.defs.modelstore.operations_helpers import (
    VERSIONS,
    failure_message,
    gc_job,
    observed,
    replication_check_job,
    retries,
    run,
    verify_chain_job,
    with_fast_retries,
)

s3_only = pytest.mark.parametrize("store_url", ["s3"], indirect=True)


class Unreachable(BotoConnectionError):
    fmt = "S3 unreachable (simulated outage) at {endpoint_url}"


class Outage:
    """S3 goes down at the first request ``starts`` accepts, for ``calls`` store calls (``None``: for good).

    A call is botocore's whole budget of ``attempts`` requests, so each failed
    call is one that botocore gave up on.
    """

    def __init__(self, starts: Callable[[Any], bool], calls: int | None = None) -> None:
        self.starts = starts
        self.calls = calls
        self.attempts = 1
        self.failed = 0

    @property
    def failed_calls(self) -> int:
        return self.failed // self.attempts

    def before_send(self, request: Any, **_: Any) -> None:
        down = self.failed > 0 or self.starts(request)
        if down and (self.calls is None or self.failed < self.calls * self.attempts):
            self.failed += 1
            raise Unreachable(endpoint_url=request.url)


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outage]:
    """Puts every model store the jobs open behind an :class:`Outage`."""

    def install(starts: Callable[[Any], bool], calls: int | None = None) -> Outage:
        outage = Outage(starts, calls)
        open_store = ModelStoreResource.open

        def open_behind_outage(self: ModelStoreResource) -> ModelStore:
            store = open_store(self)
            client = store.objects.client
            outage.attempts = client.meta.config.retries["total_max_attempts"]
            client.meta.events.register_first("before-send.s3", outage.before_send)
            return store

        monkeypatch.setattr(ModelStoreResource, "open", open_behind_outage)
        monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
        return outage

    return install


def blob_deletion(request: Any) -> bool:
    """GC's batched blob delete: by then the collected versions are marked, their blobs not yet gone."""
    return request.method == "POST" and "?delete" in request.url


@s3_only
def test_an_outage_as_gc_deletes_is_retried_and_loses_nothing(
    instance: dg.DagsterInstance, chain: ModelStore, outage: Callable[..., Outage], tmp_path: Path
):
    set_pin(chain, "prod", 2)
    injected = outage(blob_deletion, calls=1)

    result = run(with_fast_retries(gc_job), instance)

    assert result.success
    assert injected.failed_calls == 1 and retries(result) == 1
    assert chain.collected_counters() == {0, 3, 4}
    assert chain.record_counters() == list(range(VERSIONS))
    assert chain.checkout("pin:prod", tmp_path / "prod").counter == 2
    assert verify(chain, deep=True).valid
    assert observed(instance)["versions_collected"] == 3


@s3_only
def test_a_persistent_outage_fails_gc_with_the_store_error_and_loses_nothing(
    instance: dg.DagsterInstance, chain: ModelStore, outage: Callable[..., Outage], tmp_path: Path
):
    set_pin(chain, "prod", 2)
    outage(blob_deletion)

    result = run(with_fast_retries(gc_job, max_retries=2), instance)

    assert not result.success
    assert retries(result) == 2
    message = failure_message(result)
    assert "StoreOutageError" in message and chain.url in message and "S3 unreachable" in message
    assert chain.record_counters() == list(range(VERSIONS))
    assert chain.checkout("pin:prod", tmp_path / "prod").counter == 2
    assert verify(chain, deep=True).valid


@s3_only
@pytest.mark.parametrize("job", [verify_chain_job, replication_check_job], ids=lambda job: job.name)
def test_checks_during_an_outage_report_the_outage_not_a_verdict(
    instance: dg.DagsterInstance, environment: Path, outage: Callable[..., Outage], job: dg.JobDefinition
):
    outage(lambda request: True)  # from the first request on: what the store holds does not matter

    result = run(with_fast_retries(job, max_retries=1), instance)

    assert not result.success and retries(result) == 1
    assert "StoreOutageError" in failure_message(result)
    assert instance.fetch_observations(model_store.key, limit=1).records == []  # neither valid nor corrupt
