"""The GC lease is released only by its holder: a GC whose lease expired and was taken over never
deletes the new holder's lease (two real processes, on a folder, on moto and on SeaweedFS)."""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.modelstore import ModelStore, collect_garbage
from sn46_pipelines.modelstore.layout import GC_LEASE
from sn46_pipelines.modelstore.lease import Lease, read_lease
from sn46_pipelines.objectstore import UnsupportedOperationError
from tests.modelstore.modelstore_helpers import start_worker


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


def _say(proc, line: str = "") -> None:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def test_a_release_after_a_takeover_leaves_the_new_holders_lease(store_url: str):
    store = ModelStore.open(store_url)
    first = start_worker("lease", store_url, "0")  # expires at once: any GC may take it over
    first_owner = first.stdout.readline().strip()
    _say(first)  # release...
    assert first.stdout.readline() == "deleting\n"  # ...paused just before its delete
    second = start_worker("lease", store_url, "600")
    second_owner = second.stdout.readline().strip()
    assert second_owner and second_owner != first_owner
    _say(first)  # the first GC's delete goes ahead now
    assert first.stdout.readline() == "released\n"
    assert first.wait(timeout=60) == 0

    held = read_lease(store.objects)
    assert held is not None and held[0]["owner"] == second_owner  # the second GC still holds it
    with pytest.raises(Exception, match="another GC"):
        collect_garbage(store, keep_versions=1)
    _say(second)
    assert second.stdout.readline() == "deleting\n"
    _say(second)
    assert second.stdout.readline() == "released\n" and second.wait(timeout=60) == 0
    assert read_lease(store.objects) is None and not store.objects.exists(GC_LEASE)


class _NoConditionalDelete:
    """A store whose server cannot delete conditionally (fault injection over a real store)."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def delete_if_match(self, key: str, etag: str) -> None:
        raise UnsupportedOperationError(f"{self._inner.url}: the server does not implement this")


def test_without_conditional_deletes_a_release_expires_the_lease_in_place(store_url: str):
    store = ModelStore.open(store_url)
    objects = _NoConditionalDelete(store.objects)
    with Lease(objects) as lease:
        assert read_lease(store.objects)[0]["owner"] == lease.owner
    assert store.objects.exists(GC_LEASE) and read_lease(store.objects) is None  # kept, but expired
    assert json.loads(store.objects.get(GC_LEASE))["released"] is True
    with Lease(store.objects):  # the next GC takes it over
        assert read_lease(store.objects) is not None
    assert not store.objects.exists(GC_LEASE)
