"""InferenceClient: hot swap, pins, rejection of bad versions, outages, and the torch/ONNX loaders."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from sn46_pipelines.modelstore import ModelStore, set_pin
from sn46_pipelines.modelstore.inference import InferenceClient
from sn46_pipelines.modelstore.layout import blob_key
from sn46_pipelines.modelstore.loaders import json_loader, onnx_loader, torch_loader
from sn46_pipelines.objectstore import StoreUnavailableError


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _client(store: ModelStore, target, tmp_path, **kwargs) -> InferenceClient:
    return InferenceClient(store, target, loader=json_loader(), cache_dir=tmp_path / "cache", **kwargs)


def test_tracking_client_hot_swaps_to_a_new_object(mstore: ModelStore, make_checkpoint, tmp_path):
    mstore.commit(make_checkpoint(0))
    with _client(mstore, "head", tmp_path, poll_interval=0.02) as client:
        old = client.model
        assert old == {"seed": "0"} and client.health().version_id == "v0000000000"
        mstore.commit(make_checkpoint(1))
        wait_for(lambda: client.health().version_id == "v0000000001")
        assert client.model == {"seed": "1"}
        assert old == {"seed": "0"} and old is not client.model  # the old holder is unaffected
        assert client.health().healthy and client.health().polling
        mstore.commit(make_checkpoint(2))
        wait_for(lambda: client.health().version_id == "v0000000002")
    # The cache keeps the served and the previous version only.
    assert len(list((tmp_path / "cache" / "versions").iterdir())) == 2
    assert len(list((tmp_path / "cache" / "blobs").iterdir())) == 5


def test_pinned_client_stays_until_the_pin_moves(mstore: ModelStore, make_checkpoint, tmp_path):
    for i in range(3):
        mstore.commit(make_checkpoint(i))
    set_pin(mstore, "prod", 1)
    client = _client(mstore, "prod", tmp_path)
    assert client.poll() and client.model == {"seed": "1"}
    mstore.commit(make_checkpoint(3))
    assert client.poll() and client.health().version_id == "v0000000001"
    set_pin(mstore, "prod", 3)
    assert client.poll() and client.model == {"seed": "3"}
    fixed = _client(mstore, 2, tmp_path)
    assert fixed.poll() and fixed.model == {"seed": "2"} and fixed.target == "v0000000002"


def test_a_corrupt_new_version_is_rejected_while_the_old_one_serves(
    mstore: ModelStore, make_checkpoint, tmp_path
):
    mstore.commit(make_checkpoint(0))
    client = _client(mstore, "head", tmp_path)
    assert client.poll()
    bad = mstore.commit(make_checkpoint(1))
    key = blob_key(bad.manifest["metrics.json"].sha256)
    mstore.objects.put(key, mstore.objects.get(key).replace(b"1", b"9"))  # same size, other bytes
    assert not client.poll()
    health = client.health()
    assert (health.version_id, health.consecutive_failures, health.last_poll_ok) == ("v0000000000", 1, False)
    assert "corrupt" in health.last_error and not health.healthy
    assert client.model == {"seed": "0"}
    assert client.next_delay() >= client.poll_interval  # backing off: one failure waits 1 to 2 intervals

    mstore.commit(make_checkpoint(2, extra={"notes.txt": b"fixed"}))
    assert client.poll() and client.model == {"seed": "2"}
    assert client.health().consecutive_failures == 0 and client.next_delay() <= 1.1 * client.poll_interval


def test_a_version_the_loader_rejects_is_not_served(mstore: ModelStore, make_checkpoint, tmp_path):
    mstore.commit(make_checkpoint(0))
    client = _client(mstore, "head", tmp_path)
    client.poll()
    broken = make_checkpoint(1)
    (broken / "metrics.json").write_text("{not json")
    mstore.commit(broken)
    assert not client.poll()
    assert client.model == {"seed": "0"} and "JSONDecodeError" in client.health().last_error


class Outage:
    """Wraps a real store; while ``down`` every call fails like an unreachable endpoint."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.down = False

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.down:
                raise StoreUnavailableError("simulated outage: connection refused")
            return attr(*args, **kwargs)

        return call


def test_store_outage_then_recovery_with_backoff(mstore: ModelStore, make_checkpoint, tmp_path):
    mstore.commit(make_checkpoint(0))
    outage = Outage(mstore.objects)
    client = _client(ModelStore(outage), "head", tmp_path, poll_interval=0.02, max_backoff=0.1)
    with client:
        outage.down = True
        wait_for(lambda: client.health().consecutive_failures >= 3)
        health = client.health()
        assert health.polling and health.version_id == "v0000000000" and "outage" in health.last_error
        assert 0.05 <= client.next_delay() <= 0.1  # max_backoff, with equal jitter
        assert client.model == {"seed": "0"}
        mstore.commit(make_checkpoint(1))
        outage.down = False
        wait_for(lambda: client.health().healthy)
        assert client.health().version_id == "v0000000001"


def test_a_client_that_starts_during_an_outage_loads_when_it_ends(mstore, make_checkpoint, tmp_path):
    mstore.commit(make_checkpoint(0))
    outage = Outage(mstore.objects)
    outage.down = True
    with _client(ModelStore(outage), "head", tmp_path, poll_interval=0.02, max_backoff=0.05) as client:
        assert client.served is None
        with pytest.raises(Exception, match="no model loaded"):
            client.model  # noqa: B018  reading the property is what must raise
        outage.down = False
        wait_for(lambda: client.served is not None)
        assert client.model == {"seed": "0"}


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_torch_and_onnx_checkpoints_load_through_their_hooks(mstore: ModelStore, tmp_path):
    import onnx
    import torch
    from onnx import TensorProto, helper

    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"weight": torch.arange(4.0)}, folder / "model.pt")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph), folder / "model.onnx")
    (folder / "metrics.json").write_text(json.dumps({"mape": 0.1}))
    mstore.commit(folder)

    state = InferenceClient(mstore, "head", loader=torch_loader(), cache_dir=tmp_path / "c1")
    assert state.poll(), state.health().last_error
    assert torch.equal(state.model["weight"], torch.arange(4.0))
    proto = InferenceClient(mstore, 0, loader=onnx_loader(), cache_dir=tmp_path / "c2")
    assert proto.poll(), proto.health().last_error
    assert proto.model.graph.node[0].op_type == "Relu"
