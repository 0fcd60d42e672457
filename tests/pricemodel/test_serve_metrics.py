"""The inference server's ``/metrics`` and ``sn46 serve``'s check of its target before it starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sn46_pipelines.modelstore import InferenceClient, ModelStore, set_pin
from sn46_pipelines.pricemodel.checkpoint import commit_checkpoint
from sn46_pipelines.pricemodel.predictor import load_predictor
from sn46_pipelines.pricemodel.serve import create_app

LISTING = {"living_area": 1800, "bedrooms": 3, "bathrooms": 2, "zip_code": "78701"}


def scrape(http) -> dict[tuple[str, frozenset], float]:
    """``/metrics`` parsed as the Prometheus server parses it: each sample by name and labels."""
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def models(tmp_path) -> ModelStore:
    (tmp_path / "models").mkdir()
    return ModelStore.open(f"file://{tmp_path / 'models'}")


def test_metrics_count_predictions_by_route_and_show_the_served_version(models, trained, tmp_path):
    record = commit_checkpoint(models, trained, tmp_path / "ckpt")
    set_pin(models, "prod", record.counter)
    client = InferenceClient(models, "pin:prod", loader=load_predictor, poll_interval=60)
    with TestClient(create_app(client)) as http:
        for batch in (5, 3):
            assert http.post("/predict", json={"listings": [LISTING] * batch}).status_code == 200
        assert http.post("/predict", json={"listings": []}).status_code == 422
        assert http.get("/health").status_code == 200
        samples = scrape(http)

    predict_ok = {"route": "/predict", "method": "POST", "status": "200"}
    assert value(samples, "sn46_inference_predictions_total") == 8
    assert value(samples, "sn46_inference_http_requests_total", **predict_ok) == 2
    assert value(samples, "sn46_inference_http_request_duration_seconds_count", **predict_ok) == 2
    assert value(samples, "sn46_inference_http_request_duration_seconds_bucket", **predict_ok, le="+Inf") == 2
    invalid = {"route": "/predict", "method": "POST", "status": "422"}
    assert value(samples, "sn46_inference_http_requests_total", **invalid) == 1
    info = {"target": "pin:prod", "version_id": record.version_id, "record_hash": record.record_hash}
    assert value(samples, "sn46_inference_model_info", **info) == 1
    assert value(samples, "sn46_inference_model_loaded_timestamp_seconds") > 0
    assert value(samples, "sn46_inference_healthy") == 1
    assert value(samples, "sn46_inference_polling") == 1
    assert value(samples, "sn46_inference_poll_last_ok") == 1
    assert value(samples, "sn46_inference_poll_consecutive_failures") == 0


def test_metrics_without_a_model_and_two_apps_in_one_process(models):
    """The poll state says why nothing is served; a second app has its own registry (no duplicate series)."""
    refused = {"route": "/predict", "method": "POST", "status": "503"}
    clients = [InferenceClient(models, "pin:prod", loader=load_predictor, poll_interval=60) for _ in range(2)]
    with TestClient(create_app(clients[0])) as first, TestClient(create_app(clients[1])) as second:
        assert first.post("/predict", json={"listings": [LISTING]}).status_code == 503
        samples = scrape(first)
        assert value(scrape(second), "sn46_inference_http_requests_total", **refused) is None
    assert not any(name == "sn46_inference_model_info" for name, _ in samples)
    assert value(samples, "sn46_inference_healthy") == 0
    assert value(samples, "sn46_inference_poll_last_ok") == 0
    assert value(samples, "sn46_inference_poll_consecutive_failures") == 1
    assert value(samples, "sn46_inference_predictions_total") == 0
    assert value(samples, "sn46_inference_http_requests_total", **refused) == 1


def sn46_serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sn46_pipelines.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SN46_ENV": "local"},
    )


def two_versions(models: ModelStore, tmp_path: Path) -> None:
    """Two committed versions; the start check reads records only, so any files do."""
    for seed in range(2):
        folder = tmp_path / f"ckpt-{seed}"
        folder.mkdir()
        (folder / "model.pt").write_bytes(f"weights-{seed}".encode())
        models.commit(folder)


def test_sn46_serve_refuses_a_version_the_store_does_not_have(models, tmp_path):
    two_versions(models, tmp_path)
    proc = sn46_serve("--store", models.url, "--version", "99", "--port", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err == (
        f"sn46: error: v0000000099 is not in {models.url} (the newest is v0000000001); a fixed version "
        "must already be committed: serve head or a pin to follow new versions\n"
    )
    assert out == ""  # nothing started


def test_sn46_serve_refuses_a_version_that_names_no_version(models):
    proc = sn46_serve("--store", models.url, "--version", "latest", "--port", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err == (
        "sn46: error: --version 'latest': give a version (v0000000012 or 12) or head; "
        "--pin NAME follows a pin\n"
    )
    assert out == ""


def test_sn46_serve_says_it_waits_for_a_pin_not_set_yet(models, tmp_path):
    """A missing pin may be set later: the server starts and says what it waits for (read, then stopped)."""
    two_versions(models, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = sn46_serve("--store", models.url, "--pin", "prod", "--port", str(port))
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # both printed before uvicorn starts
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert lines == [
        f"sn46 serve: pin:prod from {models.url} on http://127.0.0.1:{port}\n",
        f"sn46 serve: waiting for pin:prod: {models.url}: no pin named 'prod'; "
        "/predict answers 503 until then\n",
    ]
