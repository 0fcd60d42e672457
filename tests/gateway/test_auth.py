"""Forged, stale, future and replayed signatures; unregistered callers; the validator rule; btauth/1."""

from __future__ import annotations

import json
import time

import pytest
from bittensor import http_auth

from .helpers import (
    GATEWAY,
    LOW_STAKE,
    MINER,
    MINER2,
    NO_PERMIT,
    STRANGER,
    VALIDATOR,
    file_urls_request,
    miner_request,
    miner_specific_request,
    sign,
    validator_request,
)


def test_forged_signature_is_refused(client):
    body = miner_request()
    forged = f"s3:data:access:{body['coldkey']}:{MINER.ss58_address}:{body['timestamp']}"
    body["signature"] = sign(STRANGER, forged)  # someone else signs the miner's commitment
    r = client.post("/get-folder-access", json=body)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid signature"


def test_signature_over_a_different_commitment_is_refused(client):
    body = validator_request()
    body["signature"] = sign(VALIDATOR, f"s3:validator:access:{body['timestamp'] + 1}")
    assert client.post("/get-validator-access", json=body).status_code == 401


def test_garbage_signatures_are_refused(client):
    for signature in ["zz" * 64, "ab" * 10, "", "0x", "00" * 64]:
        body = miner_request()
        body["signature"] = signature
        assert client.post("/get-folder-access", json=body).status_code == 401, signature


def test_stale_and_future_timestamps_are_refused(client):
    now = int(time.time())
    assert client.post("/get-folder-access", json=miner_request(ts=now - 301)).status_code == 401
    assert client.post("/get-folder-access", json=miner_request(ts=now - 250)).status_code == 200
    r = client.post("/get-folder-access", json=miner_request(ts=now + 120))
    assert r.status_code == 401 and "future" in r.json()["detail"]
    assert client.post("/get-folder-access", json=miner_request(ts=now + 30)).status_code == 200
    expired = miner_request(expiry=now - 1)
    assert client.post("/get-folder-access", json=expired).status_code == 401


def test_replayed_request_is_refused_and_charges_nothing(client):
    body = miner_request()
    first = client.post("/get-folder-access", json=body)
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "49"
    again = client.post("/get-folder-access", json=body)
    assert again.status_code == 401 and "replay" in again.json()["detail"]
    upper = dict(body, signature="0x" + body["signature"].upper())  # same bytes, other spelling
    assert client.post("/get-folder-access", json=upper).status_code == 401
    fresh = client.post("/get-folder-access", json=miner_request())  # same second, new signature
    assert fresh.status_code == 200 and fresh.headers["X-RateLimit-Remaining"] == "48"


def test_replay_is_refused_across_gateways_sharing_redis(make_client):
    one, two = make_client(), make_client()
    body = validator_request()
    assert one.post("/get-validator-access", json=body).status_code == 200
    assert two.post("/get-validator-access", json=body).status_code == 401


def test_unregistered_hotkey_is_refused(client):
    r = client.post("/get-folder-access", json=miner_request(STRANGER, coldkey=STRANGER.ss58_address))
    assert r.status_code == 403 and "not registered" in r.json()["detail"]
    r = client.post("/get-validator-access", json=validator_request(STRANGER))
    assert r.status_code == 403


@pytest.mark.parametrize("kp", [MINER2, LOW_STAKE, NO_PERMIT], ids=["miner", "low-stake", "no-permit"])
def test_non_validators_get_no_validator_access(client, kp):
    assert client.post("/get-validator-access", json=validator_request(kp)).status_code == 403
    miner = MINER.ss58_address
    r = client.post("/get-miner-specific-access", json=miner_specific_request(miner, kp))
    assert r.status_code == 403
    keys = [f"data/hotkey={miner}/job_id=j/a.parquet"]
    assert client.post("/get-file-presigned-urls", json=file_urls_request(miner, keys, kp)).status_code == 403


def test_validator_stake_threshold_is_configurable(make_client):
    client = make_client(SN46_GATEWAY_MIN_VALIDATOR_STAKE="5")
    assert client.post("/get-validator-access", json=validator_request(LOW_STAKE)).status_code == 200


def btauth_post(client, path: str, payload: dict, kp=MINER, receiver: str | None = None, **kwargs):
    body = json.dumps(payload).encode()
    headers = http_auth.sign(kp, method="POST", path=path, body=body,
                             receiver_ss58=receiver or GATEWAY.ss58_address, **kwargs)
    response = client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    return response, body, headers


def test_btauth_request_is_accepted_once(client):
    r, body, headers = btauth_post(client, "/get-folder-access", {"job_id": "default_0"})
    assert r.status_code == 200, r.text
    assert r.json()["folder"] == f"data/hotkey={MINER.ss58_address}/"
    again = client.post("/get-folder-access", content=body, headers=headers)
    assert again.status_code == 401 and "replay" in again.json()["detail"]


def test_btauth_validator_endpoints(client):
    miner = MINER.ss58_address
    r, _, _ = btauth_post(client, "/get-miner-specific-access", {"miner_hotkey": miner}, kp=VALIDATOR)
    assert r.status_code == 200, r.text
    r, _, _ = btauth_post(client, "/get-validator-access", {}, kp=MINER)
    assert r.status_code == 403


def test_btauth_refuses_tampering_wrong_receiver_and_stale_nonces(client):
    body = json.dumps({"job_id": "a"}).encode()
    headers = http_auth.sign(MINER, method="POST", path="/get-folder-access", body=body,
                             receiver_ss58=GATEWAY.ss58_address)
    other = json.dumps({"job_id": "b"}).encode()
    tampered = client.post("/get-folder-access", content=other, headers=headers)
    assert tampered.status_code == 401 and "BadSignature" in tampered.json()["detail"]

    r, _, _ = btauth_post(client, "/get-folder-access", {}, receiver=VALIDATOR.ss58_address)
    assert r.status_code == 401 and "WrongReceiver" in r.json()["detail"]

    r, _, _ = btauth_post(client, "/get-folder-access", {}, nonce_ns=time.time_ns() - 60 * 10**9)
    assert r.status_code == 401 and "StaleRequest" in r.json()["detail"]

    # Signed for one path, sent to another.
    body = b"{}"
    headers = http_auth.sign(VALIDATOR, method="POST", path="/get-validator-access", body=body,
                             receiver_ss58=GATEWAY.ss58_address)
    assert client.post("/get-folder-access", content=body, headers=headers).status_code == 401


def test_btauth_body_hotkey_must_match_the_signer(client):
    r, _, _ = btauth_post(client, "/get-folder-access", {"hotkey": MINER2.ss58_address})
    assert r.status_code == 401


def test_btauth_is_refused_without_a_gateway_hotkey(make_client):
    client = make_client(SN46_GATEWAY_HOTKEY="")
    r, _, _ = btauth_post(client, "/get-folder-access", {})
    assert r.status_code == 401 and "not enabled" in r.json()["detail"]
