"""Hostile request shapes: malformed JSON, oversized bodies, missing fields, internal failures, CORS."""

from __future__ import annotations

import json

from tests.gateway.helpers import (
    MINER,
    file_urls_request,
    miner_request,
    miner_specific_request,
    validator_request,
)


def test_malformed_json_and_non_objects_are_400(client):
    for raw in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"[" * 200_000):
        r = client.post("/get-folder-access", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert set(r.json()) == {"detail"}


def test_missing_and_mistyped_fields_are_422_without_echoing_input(client):
    r = client.post("/get-folder-access", json={"hotkey": MINER.ss58_address})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"signature", "timestamp", "coldkey"}
    secret = "5" + "A" * 47
    body = {**miner_request(), "timestamp": "soon", "hotkey": secret + "!"}
    r = client.post("/get-folder-access", json=body)
    assert r.status_code == 422 and secret not in r.text and "soon" not in r.text


def test_oversized_bodies_are_413(make_client):
    client = make_client(SN46_GATEWAY_MAX_BODY_BYTES="2048")
    big = miner_request(padding="x" * 4096)
    assert client.post("/get-folder-access", json=big).status_code == 413

    def chunks():  # no Content-Length: the limit holds on the streamed bytes too
        yield json.dumps(big).encode()

    r = client.post("/get-folder-access", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.post("/get-folder-access", json=miner_request()).status_code == 200


def test_internal_errors_do_not_leak(client):
    """A presigning failure (injected) answers a bare 500 without the exception text."""

    def broken(*args, **kwargs):
        raise RuntimeError("secret-internal-detail at /etc/aws/credentials")

    client.gateway.presigner.signer.post = broken
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal error"}
    assert "secret" not in r.text


def test_unknown_paths_and_methods(client):
    assert client.get("/get-folder-access").status_code == 405
    assert client.post("/nope", json={}).status_code == 404


def test_cors_allows_only_configured_origins(make_client):
    client = make_client(SN46_GATEWAY_CORS_ORIGINS="https://dash.resi.example")
    ok = client.options(
        "/get-validator-access",
        headers={"Origin": "https://dash.resi.example", "Access-Control-Request-Method": "POST"},
    )
    assert ok.headers["access-control-allow-origin"] == "https://dash.resi.example"
    evil = client.options(
        "/get-validator-access",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers
    origin = {"Origin": "https://evil.example"}
    r = client.post("/get-validator-access", json=validator_request(), headers=origin)
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_headers_by_default(client):
    r = client.get("/healthcheck", headers={"Origin": "https://anything.example"})
    assert "access-control-allow-origin" not in r.headers


def test_unserviceable_requests_are_refused_before_any_charge(make_client):
    """A bad job id or too many file keys is answered before the ledger: today's count stays 0."""
    client = make_client(SN46_GATEWAY_MAX_FILE_KEYS="2")
    assert client.post("/get-folder-access", json=miner_request(job_id="../x")).status_code == 422
    miner = MINER.ss58_address
    keys = [f"data/hotkey={miner}/job_id=j/{i}.parquet" for i in range(3)]
    assert client.post("/get-file-presigned-urls", json=file_urls_request(miner, keys)).status_code == 400
    outside = ["data/hotkey=5Other/job_id=j/a.parquet"]
    assert client.post("/get-file-presigned-urls", json=file_urls_request(miner, outside)).status_code == 400
    r = client.post("/get-miner-specific-access", json=miner_specific_request("not/a/hotkey" + "x" * 40))
    assert r.status_code == 422
    assert client.get("/rate-limits").json()["total_used_today"] == 0
