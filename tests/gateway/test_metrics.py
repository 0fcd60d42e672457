"""``/metrics``: requests by route template, grants by kind, refusals by reason, and two workers summed."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from sn46_pipelines.cli.gateway import _metrics_folder
from sn46_pipelines.httpmetrics import MULTIPROC_ENV
from tests.gateway.clients import sn13_file_name, tao_post
from tests.gateway.helpers import (
    MINER,
    STRANGER,
    file_urls_request,
    gateway_process,
    miner_request,
    miner_specific_request,
    sign,
    validator_request,
)

from .conftest import free_port

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """A scrape as the Prometheus server reads it: each sample by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def route_total(samples: Samples, name: str, route: str) -> float:
    """The sum of ``name`` over every method and status of ``route``."""
    return sum(v for (n, labels), v in samples.items() if n == name and ("route", route) in labels)


def test_requests_are_labelled_by_route_template_and_grants_by_kind(client):
    body = miner_request()
    assert client.post("/get-folder-access", json=body).status_code == 200
    assert client.post("/get-folder-access", json=body).headers["Idempotent-Replayed"] == "true"
    assert client.post("/get-validator-access", json=validator_request()).status_code == 200
    assert client.post("/get-miner-list", json=miner_specific_request(MINER.ss58_address)).status_code == 200
    key = f"data/hotkey={MINER.ss58_address}/job_id=j1/{sn13_file_name(10)}"
    assert client.post(
        "/get-file-presigned-urls", json=file_urls_request(MINER.ss58_address, [key])
    ).is_success
    upload = tao_post(client, "/get-file-upload-url", MINER, {"job_id": "j1", "filename": sn13_file_name(10)})
    assert upload.status_code == 200, upload.text
    assert client.get("/no-such-path").status_code == 404
    assert client.get("/no-such-path/either").status_code == 404
    samples = scrape(client)

    folder_ok = {"route": "/get-folder-access", "method": "POST", "status": "200"}
    assert value(samples, "sn46_gateway_http_requests_total", **folder_ok) == 2
    assert value(samples, "sn46_gateway_http_request_duration_seconds_count", **folder_ok) == 2
    assert value(samples, "sn46_gateway_http_request_duration_seconds_bucket", **folder_ok, le="+Inf") == 2
    assert value(
        samples, "sn46_gateway_http_requests_total", route="/get-miner-list", method="POST", status="200"
    )
    # Paths no route matches share one label: a client cannot add series by inventing paths.
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(samples, "sn46_gateway_http_requests_total", **unmatched) == 2
    assert not any("no-such-path" in str(labels) for _, labels in samples)

    grants = {
        kind: value(samples, "sn46_gateway_grants_total", kind=kind)
        for kind in ("miner_folder", "file_upload", "validator_listing", "miner_listing", "file_urls")
    }
    assert grants == dict.fromkeys(grants, 1.0)  # the exact retry is no second grant...
    assert value(samples, "sn46_gateway_repeated_answers_total", kind="miner_folder") == 1  # ...but a repeat
    assert not any(name == "sn46_gateway_refusals_total" for name, _ in samples)  # nothing refused


def test_refusals_are_counted_by_the_check_that_refused(make_client):
    client = make_client(DAILY_LIMIT_PER_MINER="1")
    now = int(time.time())
    forged = miner_request(ts=now)
    forged["signature"] = sign(STRANGER, f"s3:data:access:{forged['coldkey']}:{forged['hotkey']}:{now}")
    assert client.post("/get-folder-access", json=forged).status_code == 401  # someone else's signature
    assert client.post("/get-folder-access", json=miner_request(ts=now - 3600)).status_code == 401  # stale
    stranger = miner_request(STRANGER, coldkey=STRANGER.ss58_address)
    assert client.post("/get-folder-access", json=stranger).status_code == 403  # not registered
    assert client.post("/get-validator-access", json=validator_request(MINER)).status_code == 403  # no permit
    first = miner_request(ts=now)
    assert client.post("/get-folder-access", json=first).status_code == 200
    assert client.post("/get-folder-access", json={**first, "job_id": "other"}).status_code == 401  # replay
    assert client.post("/get-folder-access", json=miner_request(ts=now + 1)).status_code == 429  # 1 a day
    assert client.post("/get-validator-access", content=b"{not json").status_code == 400
    samples = scrape(client)

    refusals = {labels: v for (name, labels), v in samples.items() if name == "sn46_gateway_refusals_total"}
    assert {dict(labels)["reason"]: v for labels, v in refusals.items()} == {
        "signature": 2,
        "unregistered": 1,
        "permission": 1,
        "replay": 1,
        "quota": 1,
        "invalid": 1,
    }
    refused = {"route": "/get-folder-access", "method": "POST", "status": "401"}
    assert value(samples, "sn46_gateway_http_requests_total", **refused) == 3
    assert value(samples, "sn46_gateway_grants_total", kind="miner_folder") == 1
    assert value(samples, "sn46_gateway_grants_total", kind="validator_listing") is None


def test_two_gateways_in_one_process_count_apart(make_client):
    first, second = make_client(), make_client()
    assert first.get("/structure-info").status_code == 200
    assert route_total(scrape(first), "sn46_gateway_http_requests_total", "/structure-info") == 1
    assert route_total(scrape(second), "sn46_gateway_http_requests_total", "/structure-info") == 0


def test_the_cli_prepares_the_metrics_folder(tmp_path, monkeypatch):
    """A named folder is created or emptied of the last run's files; several workers and none named: a
    temporary one for the run."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with _metrics_folder(2):
        temporary = Path(os.environ[MULTIPROC_ENV])
        assert temporary.is_dir()
    assert MULTIPROC_ENV not in os.environ and not temporary.exists()
    with _metrics_folder(1):
        assert MULTIPROC_ENV not in os.environ  # one worker: in-process counters are already the total

    named = tmp_path / "metrics"
    monkeypatch.setenv(MULTIPROC_ENV, str(named))
    with _metrics_folder(1):
        assert named.is_dir()
    (named / "counter_123.db").write_bytes(b"last run")
    (named / "notes.txt").write_text("not prometheus_client's")
    with _metrics_folder(2):
        assert sorted(p.name for p in named.iterdir()) == ["notes.txt"]
    assert os.environ[MULTIPROC_ENV] == str(named)


def per_worker(folder: Path, route: str) -> dict[str, float]:
    """Each worker's own count of ``route``, read from its file alone (``counter_{pid}.db``)."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)], accumulate=False)
        samples = {(s.name, frozenset(s.labels.items())): s.value for m in metrics for s in m.samples}
        counts[path.stem] = route_total(samples, "sn46_gateway_http_requests_total", route)
    return counts


@pytest.mark.slow
def test_two_workers_answer_with_the_sum_of_both(gateway_env, tmp_path):
    """``sn46 gateway --workers 2`` with PROMETHEUS_MULTIPROC_DIR: whichever worker takes the scrape, it
    reports every request both workers answered; the last run's files are gone before they start."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"a previous run's file")
    port = free_port()
    variables = {**gateway_env, "SN46_ENV": "local", MULTIPROC_ENV: str(folder)}
    with gateway_process(port, variables) as proc:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        started, log = 0, []
        while started < 2:  # each worker logs this once its app is up
            line = lines.get(timeout=60)
            log.append(line)
            started += "Application startup complete" in line
            assert proc.poll() is None, "".join(log)
        assert not (folder / "counter_1.db").exists()

        url = f"http://127.0.0.1:{port}"
        route, sent = "/structure-info", 0
        while len([n for n in per_worker(folder, route).values() if n > 0]) < 2:
            assert sent < 1_000, f"one worker answered all {sent} requests"
            for _ in range(10):  # a new connection each, so either worker may accept it
                assert httpx.get(f"{url}{route}", timeout=10).status_code == 200
            sent += 10
        counts = per_worker(folder, route)
        assert sum(counts.values()) == sent

        for _ in range(6):  # fresh connections: both workers take scrapes, and each reports the sum
            samples = parse(httpx.get(f"{url}/metrics", timeout=10).text)
            assert route_total(samples, "sn46_gateway_http_requests_total", route) == sent
            assert route_total(samples, "sn46_gateway_http_request_duration_seconds_count", route) == sent
