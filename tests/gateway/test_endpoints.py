"""Each endpoint's happy path, with today's request and response fields."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, unquote, urlsplit

from tests.gateway.helpers import (
    MINER,
    MINER_COLDKEY,
    VALIDATOR,
    file_urls_request,
    miner_request,
    miner_specific_request,
    validator_request,
)


def policy_of(fields: dict) -> dict:
    return json.loads(base64.b64decode(fields["policy"]))


def test_folder_access_returns_a_tight_policy_for_the_configured_endpoint(client, moto_endpoint, s3_bucket):
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 200, r.text
    body = r.json()
    folder = f"data/hotkey={MINER.ss58_address}/"
    assert body["folder"] == folder
    assert body["url"] == f"{moto_endpoint}/{s3_bucket}"  # the configured endpoint, not an AWS host
    assert body["structure_info"]["folder_structure"] == "data/hotkey={hotkey_id}/job_id={job_id}/"
    assert r.headers["X-RateLimit-Limit"] == "50" and r.headers["X-RateLimit-Remaining"] == "49"

    policy = policy_of(body["fields"])
    conditions = policy["conditions"]
    assert ["starts-with", "$key", folder] in conditions  # the miner's folder, any layout inside it
    assert ["content-length-range", 1, 5 * 1024**3] in conditions
    assert {"bucket": s3_bucket} in conditions
    assert {"x-amz-storage-class": "STANDARD"} in conditions
    assert "acl" not in body["fields"]  # buckets have ACLs disabled; objects are private anyway
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 86_300 < expires - time.time() <= 86_401  # 24 h: one grant serves a whole upload run
    assert body["expiry_seconds"] == 86_400
    assert body["fields"]["key"] == folder + "${filename}"
    assert body["upload_rules"] == {"key_prefix": folder, "min_bytes": 1, "max_bytes": 5 * 1024**3}

    listing = urlsplit(body["list_url"])
    assert f"{listing.scheme}://{listing.netloc}" == moto_endpoint
    assert parse_qs(listing.query)["prefix"] == [folder]


def test_folder_access_with_a_job_id_pins_that_job_folder(client):
    r = client.post("/get-folder-access", json=miner_request(job_id="zillow_premium_zip_78701_sold"))
    assert r.status_code == 200, r.text
    prefix = f"data/hotkey={MINER.ss58_address}/job_id=zillow_premium_zip_78701_sold/"
    assert ["starts-with", "$key", prefix] in policy_of(r.json()["fields"])["conditions"]
    assert r.json()["upload_rules"]["key_prefix"] == prefix


def test_client_expiry_can_only_shorten_the_policy(client):
    r = client.post("/get-folder-access", json=miner_request(expiry=int(time.time()) + 600))
    assert r.status_code == 200
    assert 590 <= r.json()["expiry_seconds"] <= 600
    r = client.post("/get-folder-access", json=miner_request(expiry=int(time.time()) + 86400 * 30))
    assert r.json()["expiry_seconds"] == 86_400


def test_unsafe_job_ids_are_refused(client):
    for job_id in ["../other", "a/b", "..", "a..b", "job\x00id", "job\nid", "", ".hidden", "x" * 129]:
        r = client.post("/get-folder-access", json=miner_request(job_id=job_id))
        assert r.status_code == 422, (job_id, r.text)
        assert "fields" not in r.json()


def test_signature_with_0x_prefix_is_accepted(client):
    body = miner_request()
    body["signature"] = "0x" + body["signature"]
    assert client.post("/get-folder-access", json=body).status_code == 200


def test_validator_access_lists_all_miner_data(client, s3_bucket, moto_endpoint):
    r = client.post("/get-validator-access", json=validator_request())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket"] == s3_bucket and body["region"] == "us-east-2"
    assert body["validator_hotkey"] == VALIDATOR.ss58_address
    all_data = parse_qs(urlsplit(body["urls"]["global"]["list_all_data"]).query)
    assert all_data["prefix"] == ["data/hotkey="]
    miners = parse_qs(urlsplit(body["urls"]["miners"]["list_all_miners"]).query)
    assert miners["delimiter"] == ["/"]
    assert body["urls"]["global"]["list_all_data"].startswith(moto_endpoint)
    assert r.headers["X-RateLimit-Limit"] == "20000"


def test_miner_specific_access_and_continuation(client):
    miner = MINER.ss58_address
    r = client.post("/get-miner-specific-access", json=miner_specific_request(miner))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prefix"] == f"data/hotkey={miner}/" and body["miner_hotkey"] == miner
    assert parse_qs(urlsplit(body["miner_url"]).query)["prefix"] == [f"data/hotkey={miner}/"]
    body = miner_specific_request(miner, continuation_token="tok123")
    r = client.post("/get-miner-specific-access", json=body)
    assert parse_qs(urlsplit(r.json()["miner_url"]).query)["continuation-token"] == ["tok123"]
    paged = client.post("/get-miner-list", json=miner_specific_request(miner, continuation_token="tok456"))
    assert paged.status_code == 200
    assert parse_qs(urlsplit(paged.json()["list_url"]).query)["continuation-token"] == ["tok456"]


def test_file_urls_sign_only_keys_inside_the_miner_folder(client, s3_bucket):
    miner = MINER.ss58_address
    inside = f"data/hotkey={miner}/job_id=j1/data_20250620_143052_150.parquet"
    outside = "data/hotkey=5Other/job_id=j1/secret.parquet"
    r = client.post("/get-file-presigned-urls", json=file_urls_request(miner, [inside, outside]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["file_urls"]) == [inside]
    assert body["invalid_files"] == [outside]
    url = urlsplit(body["file_urls"][inside]["presigned_url"])
    assert unquote(url.path) == f"/{s3_bucket}/{inside}"
    assert "X-Amz-Signature" in parse_qs(url.query)
    assert body["file_urls"][inside]["expires_in_seconds"] == 3600

    only_outside = client.post("/get-file-presigned-urls", json=file_urls_request(miner, [outside]))
    assert only_outside.status_code == 400


def test_file_urls_refuse_more_keys_than_configured(make_client):
    client = make_client(SN46_GATEWAY_MAX_FILE_KEYS="2")
    miner = MINER.ss58_address
    keys = [f"data/hotkey={miner}/job_id=j/{i}.parquet" for i in range(3)]
    assert client.post("/get-file-presigned-urls", json=file_urls_request(miner, keys)).status_code == 400


def test_service_endpoints(client, s3_bucket):
    health = client.get("/healthcheck").json()
    assert health["status"] == "ok", health
    assert health["bucket"] == s3_bucket and health["s3_ok"] is True and health["redis_ok"] is True
    assert health["metagraph"]["hotkeys"] == 5 and health["metagraph"]["block"] == 4_200_000
    assert health["metagraph"]["age_s"] >= 0 and "stats" in health

    formats = client.get("/commitment-formats").json()
    assert formats["miner_format"] == "s3:data:access:{coldkey}:{hotkey}:{timestamp}"
    assert formats["file_urls_format"] == "s3:validator:files:{miner_hotkey}:{hotkey}:{timestamp}"
    assert formats["btauth"]["enabled"] is True

    structure = client.get("/structure-info").json()
    assert structure["folder_structure"] == "data/hotkey={hotkey_id}/job_id={job_id}/"

    client.post("/get-folder-access", json=miner_request())
    limits = client.get("/rate-limits").json()
    assert (limits["per_miner"], limits["per_validator"], limits["total"]) == (50, 20000, 500000)
    assert limits["total_used_today"] == 1

    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body_schema = schema["paths"]["/get-folder-access"]["post"]["requestBody"]["content"]["application/json"]
    assert "coldkey" in body_schema["schema"]["properties"]


def test_coldkey_must_own_the_hotkey(client):
    wrong = miner_request(coldkey=VALIDATOR.ss58_address)
    r = client.post("/get-folder-access", json=wrong)
    assert r.status_code == 403
    assert MINER_COLDKEY.ss58_address not in r.text


def test_store_prefix_is_part_of_every_key(make_client, s3_bucket):
    """With SN46_DATA_STORE=s3://bucket/prefix, grants and checks use the prefixed keys the store reads."""
    client = make_client(SN46_DATA_STORE=f"s3://{s3_bucket}/sn46")
    miner = MINER.ss58_address
    body = client.post("/get-folder-access", json=miner_request()).json()
    assert body["folder"] == f"sn46/data/hotkey={miner}/"
    conditions = policy_of(body["fields"])["conditions"]
    assert ["starts-with", "$key", f"sn46/data/hotkey={miner}/"] in conditions
    inside = f"sn46/data/hotkey={miner}/job_id=j/a.parquet"
    r = client.post("/get-file-presigned-urls", json=file_urls_request(miner, [inside, inside[5:]]))
    assert list(r.json()["file_urls"]) == [inside] and r.json()["invalid_files"] == [inside[5:]]
