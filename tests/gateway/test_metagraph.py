"""The metagraph syncer (background, keeps the last good snapshot) and what the gateway answers meanwhile."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sn46_pipelines.gateway.metagraph import MetagraphSnapshot, MetagraphSyncer, ValidatorRule, file_source
from tests.gateway.helpers import MINER, VALIDATOR, miner_request, snapshot


def test_snapshot_file_round_trip_and_validator_rule(metagraph_file):
    snap = file_source(metagraph_file, 46)()
    assert snap.block == 4_200_000 and len(snap.neurons) == 5
    assert MetagraphSnapshot.from_json(snap.to_json()).neurons == snap.neurons
    rule = ValidatorRule()
    assert rule.admits(snap.get(VALIDATOR.ss58_address))
    assert not rule.admits(snap.get(MINER.ss58_address))
    assert not ValidatorRule(min_stake=0.0).admits(None)


def test_snapshot_of_another_subnet_is_an_error(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(snapshot(netuid=13)))
    with pytest.raises(ValueError, match="netuid 13"):
        file_source(path, 46)()


def test_syncer_keeps_the_last_good_snapshot_on_errors(metagraph_file):
    syncer = MetagraphSyncer(file_source(metagraph_file, 46), interval_s=300, name="test")
    assert syncer.refresh()
    good = syncer.snapshot
    metagraph_file.write_text("{broken")
    assert not syncer.refresh()
    assert syncer.snapshot is good and syncer.last_error
    metagraph_file.write_text(json.dumps({**snapshot(), "block": 4_200_100}))
    assert syncer.refresh() and syncer.snapshot.block == 4_200_100 and syncer.last_error is None


def test_syncer_refreshes_in_the_background_without_blocking_start():
    release = threading.Event()
    calls = []

    def slow_chain() -> MetagraphSnapshot:
        calls.append(time.monotonic())
        release.wait(10)
        return MetagraphSnapshot.from_json(snapshot())

    syncer = MetagraphSyncer(slow_chain, interval_s=0.05, name="slow")
    started = time.monotonic()
    syncer.start()
    assert time.monotonic() - started < 0.5 and syncer.snapshot is None
    release.set()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    syncer.stop()
    assert syncer.snapshot is not None and len(calls) >= 3


def test_gateway_answers_503_until_the_first_snapshot_and_health_is_degraded(make_client, metagraph_file):
    metagraph_file.write_text("not json yet")
    client = make_client(load_metagraph=False)
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    health = client.get("/healthcheck").json()
    assert health["status"] == "degraded" and health["metagraph"]["loaded"] is False
    assert client.get("/rate-limits").json()["total_used_today"] == 0

    metagraph_file.write_text(json.dumps(snapshot()))
    assert client.gateway.metagraph.refresh()
    assert client.post("/get-folder-access", json=miner_request()).status_code == 200


def test_health_is_degraded_when_the_bucket_is_gone(make_client):
    client = make_client(S3_BUCKET="no-such-bucket-here", SN46_DATA_STORE="")
    health = client.get("/healthcheck").json()
    assert health["status"] == "degraded" and health["s3_ok"] is False
    assert "NoSuchBucket" not in json.dumps(health)


def test_chain_source_maps_bittensor_metagraph(monkeypatch):
    """The chain path with bittensor's own result types; only the network call is replaced (no chain here)."""
    import dataclasses

    import bittensor as bt
    from bittensor.balance import Balance
    from bittensor.metagraph import Metagraph, MetagraphNeuron

    from sn46_pipelines.gateway.metagraph import chain_source

    def neuron(uid: int, hotkey: str, permit: bool, alpha: float, tao: float) -> MetagraphNeuron:
        blank = {f.name: None for f in dataclasses.fields(MetagraphNeuron)}
        return MetagraphNeuron(
            **{
                **blank,
                "uid": uid,
                "hotkey": hotkey,
                "coldkey": f"cold{uid}",
                "validator_permit": permit,
                "alpha_stake": Balance.from_tao(alpha),
                "total_stake": Balance.from_tao(tao),
            }
        )

    graph = Metagraph(
        **{
            **{f.name: None for f in dataclasses.fields(Metagraph)},
            "netuid": 46,
            "block": 77,
            "neurons": [
                neuron(0, VALIDATOR.ss58_address, True, 25_000.0, 2500.0),
                neuron(1, MINER.ss58_address, False, 40.0, 3.0),
            ],
        }
    )
    calls = []

    class Subnets:
        def metagraph(self, netuid: int, commitments: bool = True):
            calls.append((netuid, commitments))
            if len(calls) == 2:
                raise ConnectionError("chain unreachable")
            return graph

    class FakeSubtensor:
        def __init__(self, network: str) -> None:
            self.subnets = Subnets()

    monkeypatch.setattr(bt, "Subtensor", FakeSubtensor)
    syncer = MetagraphSyncer(chain_source("finney", 46), interval_s=300, name="chain:finney")
    assert syncer.refresh()
    snap = syncer.snapshot
    assert calls == [(46, False)] and snap.block == 77
    assert ValidatorRule().admits(snap.get(VALIDATOR.ss58_address))  # its alpha stake, 25,000
    assert snap.get(MINER.ss58_address).stake == pytest.approx(40.0)
    assert not syncer.refresh() and syncer.snapshot is snap  # a chain error keeps the last good snapshot
    total = MetagraphSyncer(chain_source("finney", 46, "total"), interval_s=300, name="chain:finney")
    assert total.refresh() and total.snapshot.get(MINER.ss58_address).stake == pytest.approx(3.0)
