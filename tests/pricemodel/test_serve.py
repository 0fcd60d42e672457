"""The inference server: answers, reports health, and hot-swaps while a client keeps sending requests."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from sn46_pipelines.config import InferencePin
from sn46_pipelines.modelstore import InferenceClient, ModelStore, set_pin
from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
from sn46_pipelines.pricemodel.predictor import load_predictor
from sn46_pipelines.pricemodel.serve import create_app, serve_target
from sn46_pipelines.pricemodel.train import TrainConfig, train
from tests.pricemodel.pricemodel_helpers import TINY

HOME = {
    "living_area": 1800,
    "bedrooms": 3,
    "bathrooms": 2,
    "latitude": 30.27,
    "longitude": -97.74,
    "home_type": "SINGLE_FAMILY",
    "zip_code": "78701",
}


def json_rows(listings, count: int) -> list[dict]:
    """The first ``count`` listings as JSON objects: the feature fields, a price and a string zpid."""
    return listings.select([*HOME, "price", "zpid"]).slice(0, count).to_pylist()


@pytest.fixture
def models(tmp_path) -> ModelStore:
    (tmp_path / "models").mkdir()
    return ModelStore.open(f"file://{tmp_path / 'models'}")


def test_predict_and_health_in_process(models, trained, listings, tmp_path):
    record = commit_checkpoint(models, trained, tmp_path / "ckpt")
    set_pin(models, "prod", record.counter)
    client = InferenceClient(models, "pin:prod", loader=load_predictor, poll_interval=60)
    with TestClient(create_app(client)) as http:
        health = http.get("/health").json()
        assert (
            health["version_id"] == record.version_id and health["healthy"] and health["target"] == "pin:prod"
        )
        assert health["last_poll_ok"] is True

        rows = json_rows(listings, 256)
        body = http.post("/predict", json={"listings": rows}).json()
        assert body["version_id"] == record.version_id and len(body["prices"]) == 256
        actual = np.array([r["price"] for r in rows])
        assert np.mean(np.abs(np.array(body["prices"]) - actual) / actual) < 0.3

        sparse = http.post("/predict", json={"listings": [{"zip_code": "99999"}, HOME]}).json()
        assert all(p > 10_000 for p in sparse["prices"])  # gaps are filled, unknown zips go to <other>
        assert http.post("/predict", json={"listings": []}).status_code == 422
        assert http.post("/predict", json={"listings": [{**HOME, "latitude": 123}]}).status_code == 422


def test_without_a_model_the_server_says_so(models):
    client = InferenceClient(models, "pin:prod", loader=load_predictor, poll_interval=60)
    with TestClient(create_app(client)) as http:
        assert http.get("/health").status_code == 503
        response = http.post("/predict", json={"listings": [HOME]})
        assert response.status_code == 503 and "no pin named" in response.json()["detail"]


def test_serve_target_follows_the_environment_unless_told_otherwise():
    assert serve_target(InferencePin(pin="prod", mode="pinned")) == "pin:prod"
    assert serve_target(InferencePin(pin="local", mode="tracking")) == "head"
    assert serve_target(InferencePin(pin="prod", counter=7)) == "7"
    assert serve_target(InferencePin(pin="prod"), pin="staging") == "pin:staging"
    assert serve_target(InferencePin(pin="prod"), version="v0000000003") == "v0000000003"


def test_sn46_serve_hot_swaps_while_a_client_keeps_sending(models, trained, listings, tmp_path):
    first = commit_checkpoint(models, trained, tmp_path / "first")
    set_pin(models, "prod", first.counter)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sn46_pipelines.cli",
            "serve",
            "--store",
            models.url,
            "--pin",
            "prod",
            "--port",
            str(port),
            "--poll-interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        seen: list[str] = []
        failures: list[str] = []
        stop = threading.Event()
        batch = {"listings": json_rows(listings, 8)}

        def keep_sending() -> None:
            with httpx.Client(base_url=url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/predict", json=batch)
                        response.raise_for_status()
                        seen.append(response.json()["version_id"])
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        sender = threading.Thread(target=keep_sending)
        sender.start()
        time.sleep(0.5)
        second = commit_checkpoint(
            models, train(listings, TrainConfig(**{**TINY, "seed": 1})), tmp_path / "second"
        )
        set_pin(models, "prod", second.counter)
        deadline = time.monotonic() + 30
        while (not seen or seen[-1] != second.version_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        sender.join()

        assert failures == []
        assert seen[0] == first.version_id and seen[-1] == second.version_id
        switch = seen.index(second.version_id)
        assert set(seen[:switch]) == {first.version_id} and set(seen[switch:]) == {second.version_id}
        assert httpx.get(f"{url}/health").json()["version_id"] == second.version_id
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"sn46 serve exited: {server.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("sn46 serve did not come up within 60 s")
