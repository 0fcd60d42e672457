"""Forged, stale, future and replayed signatures; unregistered callers; the validator rule; btauth/1."""

from __future__ import annotations

import json
import time

import pytest
from bittensor import http_auth
from bittensor.sp_core import Keypair

from tests.gateway.clients import tao_headers, tao_post
from tests.gateway.helpers import (
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
    snapshot,
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


def test_a_retry_gets_the_first_answer_and_a_changed_replay_is_refused(client):
    body = miner_request()
    first = client.post("/get-folder-access", json=body)
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "49"
    again = client.post("/get-folder-access", json=body)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["X-RateLimit-Remaining"] == "49"
    upper = dict(body, signature="0x" + body["signature"].upper())  # same signature, other spelling
    changed = client.post("/get-folder-access", json=upper)
    assert changed.status_code == 401 and "replay" in changed.json()["detail"]
    pinned = client.post("/get-folder-access", json={**body, "job_id": "other_job"})  # an unsigned field
    assert pinned.status_code == 401
    fresh = client.post("/get-folder-access", json=miner_request())  # same second, new signature
    assert fresh.status_code == 200 and fresh.headers["X-RateLimit-Remaining"] == "48"


def test_retries_and_replays_across_gateways_sharing_redis(make_client):
    one, two = make_client(), make_client()
    body = validator_request()
    first = one.post("/get-validator-access", json=body)
    assert first.status_code == 200
    retry = two.post("/get-validator-access", json=body)
    assert retry.status_code == 200 and retry.content == first.content
    changed = two.post("/get-validator-access", json={**body, "continuation_token": "t"})
    assert changed.status_code == 401
    assert two.get("/rate-limits").json()["total_used_today"] == 1


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
    headers = http_auth.sign(
        kp, method="POST", path=path, body=body, receiver_ss58=receiver or GATEWAY.ss58_address, **kwargs
    )
    response = client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    return response, body, headers


def test_btauth_request_is_granted_once(client):
    r, body, headers = btauth_post(client, "/get-folder-access", {"job_id": "default_0"})
    assert r.status_code == 200, r.text
    assert r.json()["folder"] == f"data/hotkey={MINER.ss58_address}/"
    again = client.post("/get-folder-access", content=body, headers=headers)
    assert again.status_code == 200 and again.content == r.content
    assert again.headers["X-RateLimit-Remaining"] == r.headers["X-RateLimit-Remaining"]


def test_btauth_validator_endpoints(client):
    miner = MINER.ss58_address
    r, _, _ = btauth_post(client, "/get-miner-specific-access", {"miner_hotkey": miner}, kp=VALIDATOR)
    assert r.status_code == 200, r.text
    r, _, _ = btauth_post(client, "/get-validator-access", {}, kp=MINER)
    assert r.status_code == 403


def test_btauth_refuses_tampering_wrong_receiver_and_stale_nonces(client):
    body = json.dumps({"job_id": "a"}).encode()
    headers = http_auth.sign(
        MINER, method="POST", path="/get-folder-access", body=body, receiver_ss58=GATEWAY.ss58_address
    )
    other = json.dumps({"job_id": "b"}).encode()
    tampered = client.post("/get-folder-access", content=other, headers=headers)
    assert tampered.status_code == 401 and "BadSignature" in tampered.json()["detail"]

    r, _, _ = btauth_post(client, "/get-folder-access", {}, receiver=VALIDATOR.ss58_address)
    assert r.status_code == 401 and "WrongReceiver" in r.json()["detail"]

    r, _, _ = btauth_post(client, "/get-folder-access", {}, nonce_ns=time.time_ns() - 60 * 10**9)
    assert r.status_code == 401 and "StaleRequest" in r.json()["detail"]

    # Signed for one path, sent to another.
    body = b"{}"
    headers = http_auth.sign(
        VALIDATOR, method="POST", path="/get-validator-access", body=body, receiver_ss58=GATEWAY.ss58_address
    )
    assert client.post("/get-folder-access", content=body, headers=headers).status_code == 401


def test_btauth_body_hotkey_must_match_the_signer(client):
    r, _, _ = btauth_post(client, "/get-folder-access", {"hotkey": MINER2.ss58_address})
    assert r.status_code == 401


def test_btauth_is_refused_without_a_gateway_hotkey(make_client):
    client = make_client(SN46_GATEWAY_HOTKEY="")
    r, _, _ = btauth_post(client, "/get-folder-access", {})
    assert r.status_code == 401 and "not enabled" in r.json()["detail"]


def test_the_default_validator_rule_is_the_reference_apis(make_client, tmp_path):
    """A permit and more than 20,000 alpha, in whole units: 20,000.9 is not enough, 20,001 is."""
    just_under, just_over = Keypair.create_from_uri("//Dave"), Keypair.create_from_uri("//Ferdie")
    graph = snapshot()
    graph["neurons"] += [
        {"uid": 10, "hotkey": just_under.ss58_address, "validator_permit": True, "stake": 20_000.9},
        {"uid": 11, "hotkey": just_over.ss58_address, "validator_permit": True, "stake": 20_001.0},
    ]
    path = tmp_path / "edge.json"
    path.write_text(json.dumps(graph))
    client = make_client(SN46_METAGRAPH_FILE=str(path))
    r = client.post("/get-validator-access", json=validator_request(just_under))
    assert r.status_code == 403 and "more than 20,000 alpha stake" in r.json()["detail"]
    assert client.post("/get-validator-access", json=validator_request(just_over)).status_code == 200
    assert client.get("/commitment-formats").json()["validator_rule"] == (
        "a validator permit and more than 20,000 alpha stake"
    )


def test_the_validator_rule_is_configurable(make_client):
    permitless = make_client(SN46_GATEWAY_VALIDATOR_PERMIT="false")
    assert permitless.post("/get-validator-access", json=validator_request(NO_PERMIT)).status_code == 200
    assert permitless.post("/get-validator-access", json=validator_request(MINER2)).status_code == 403
    total = make_client(SN46_GATEWAY_VALIDATOR_STAKE="total", SN46_GATEWAY_MIN_VALIDATOR_STAKE="999")
    formats = total.get("/commitment-formats").json()
    assert formats["validator_rule"] == "a validator permit and more than 999 total stake"


def tao_request(path: str, payload: dict, kp=VALIDATOR, **signing) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, tao_headers(kp, body, **signing)


def test_x_tao_requests_are_granted_once_and_refused_when_altered(client):
    miner = MINER.ss58_address
    body, headers = tao_request("/get-miner-list", {"miner_hotkey": miner})
    first = client.post("/get-miner-list", content=body, headers=headers)
    assert first.status_code == 200, first.text
    retry = client.post("/get-miner-list", content=body, headers=headers)
    assert retry.status_code == 200 and retry.content == first.content

    tampered = json.dumps({"miner_hotkey": MINER2.ss58_address}).encode()
    r = client.post("/get-miner-list", content=tampered, headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid signature"
    # The scheme does not sign the path: the fingerprint does, so the request is not spent elsewhere.
    r = client.post("/get-miner-specific-access", content=body, headers=headers)
    assert r.status_code == 401 and "replay" in r.json()["detail"]
    # A new signature over a new body cannot reuse a nonce.
    body2, reused = tao_request(
        "/get-miner-list", {"miner_hotkey": MINER2.ss58_address}, nonce=headers["X-Tao-Nonce"]
    )
    assert client.post("/get-miner-list", content=body2, headers=reused).status_code == 401
    assert client.get("/rate-limits").json()["total_used_today"] == 1


def test_x_tao_forged_stale_future_and_malformed_headers_are_refused(client):
    payload = {"miner_hotkey": MINER.ss58_address}
    now_ms = int(time.time() * 1000)
    body, forged = tao_request("/get-miner-list", payload, kp=STRANGER)
    forged["X-Tao-Signed-By"] = VALIDATOR.ss58_address  # a stranger's signature, the validator's name
    cases = {
        "Invalid signature": forged,
        "too old": tao_request("/get-miner-list", payload, millis=now_ms - 301_000)[1],
        "future": tao_request("/get-miner-list", payload, millis=now_ms + 120_000)[1],
        "X-Tao-Version": {**tao_request("/get-miner-list", payload)[1], "X-Tao-Version": "1"},
        "milliseconds": {**tao_request("/get-miner-list", payload)[1], "X-Tao-Timestamp": "soon"},
        "X-Tao-Nonce": tao_request("/get-miner-list", payload, nonce="a b")[1],
        "not base64": {**tao_request("/get-miner-list", payload)[1], "X-Tao-Signature": "%%%"},
    }
    for expected, headers in cases.items():
        r = client.post("/get-miner-list", content=body, headers=headers)
        assert r.status_code == 401 and expected in r.json()["detail"], (expected, r.text)
    partial = {k: v for k, v in tao_request("/get-miner-list", payload)[1].items() if k != "X-Tao-Nonce"}
    r = client.post("/get-miner-list", content=body, headers=partial)
    assert r.status_code == 401 and r.json()["detail"] == "Missing headers: X-Tao-Nonce"
    mixed = {
        **tao_request("/get-miner-list", payload)[1],
        **http_auth.sign(
            VALIDATOR, method="POST", path="/get-miner-list", body=body, receiver_ss58=GATEWAY.ss58_address
        ),
    }
    r = client.post("/get-miner-list", content=body, headers=mixed)
    assert r.status_code == 401 and "one scheme" in r.json()["detail"]
    assert client.get("/rate-limits").json()["total_used_today"] == 0


def test_x_tao_callers_meet_the_same_admission(client):
    """A miner signing X-Tao gets its own folder; a miner is no validator; the body cannot name another."""
    r = tao_post(client, "/get-folder-access", MINER, {})
    assert r.status_code == 200 and r.json()["folder"] == f"data/hotkey={MINER.ss58_address}/"
    assert tao_post(client, "/get-miner-list", MINER, {"miner_hotkey": MINER.ss58_address}).status_code == 403
    r = tao_post(client, "/get-folder-access", MINER, {"hotkey": MINER2.ss58_address})
    assert r.status_code == 401 and "differs" in r.json()["detail"]
    r = tao_post(client, "/get-miner-list", STRANGER, {"miner_hotkey": MINER.ss58_address})
    assert r.status_code == 403 and "not registered" in r.json()["detail"]
