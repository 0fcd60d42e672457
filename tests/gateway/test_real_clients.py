"""Today's SN46 miners and validators and SN13's current validator, request for request, against the gateway.

Each request is rebuilt as its client builds it (:mod:`.clients`). moto, the
S3 here, does not enforce POST policies, so every upload is also checked
against the signed policy with :func:`.clients.policy_allows`, which applies
the conditions as S3 does; the SeaweedFS tests enforce them for real.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx
import pytest

from sn46_pipelines.gateway.app import request_fingerprint
from tests.gateway.clients import (
    JSON,
    ValidatorGrantCache,
    job_key,
    listing,
    policy_allows,
    resi_miner_grant_body,
    resi_miner_specific_body,
    resi_validator_body,
    tao_post,
    upload,
    zipcode_document,
    zipcode_key,
)
from tests.gateway.helpers import MINER, MINER2, MINER_COLDKEY, VALIDATOR, file_urls_request

EPOCH = "2026-12-03T08-00-00"
COLDKEY = MINER_COLDKEY.ss58_address


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> str:
    """Both S3 servers: SeaweedFS enforces the POST policy's conditions and the signatures."""
    return request.param


def miner_grant(client) -> dict:
    r = client.post("/get-folder-access", content=resi_miner_grant_body(MINER, COLDKEY), headers=JSON)
    assert r.status_code == 200, r.text
    return r.json()


def test_resi_zipcode_upload_lands_in_the_miners_folder(client, gateway_bucket):
    """The default mining path: one grant, one JSON document per zipcode, keys as the miner writes them."""
    grant = miner_grant(client)
    hotkey = MINER.ss58_address
    assert 86_000 < grant["expiry_seconds"] <= 86_400  # the client asks for 24 h and gets it
    for zipcode, listings in (("78701", 1), ("78702", 40)):
        key = zipcode_key(grant, hotkey, EPOCH, zipcode)
        assert key.startswith(f"data/hotkey={hotkey}/data/hotkey={hotkey}/epoch={EPOCH}/zipcode={zipcode}/")
        document = zipcode_document(hotkey, EPOCH, zipcode, listings)
        assert policy_allows(grant["fields"], gateway_bucket, key, len(document))
        assert upload(httpx, grant, key, document).status_code == 204  # the client counts only a 204
    # The layout as the validator expects it, written by a miner that does not repeat the folder.
    canonical = f"data/hotkey={hotkey}/epoch={EPOCH}/zipcode=78703/data_20261203_091502.json"
    assert policy_allows(grant["fields"], gateway_bucket, canonical, 700)
    keys, _ = listing(httpx.get(grant["list_url"]).text)
    assert len(keys) == 2 and all(f"epoch={EPOCH}" in k for k in keys)


def test_resi_partitioned_upload_run_uses_one_grant(client, gateway_bucket, s3_endpoint):
    """``S3PartitionedUploader``: one grant for every job and chunk of a run."""
    grant = miner_grant(client)
    keys = [job_key(grant, job, rows) for job, rows in (("default_0", 150), ("zillow_sold_78701", 67))]
    parquet = b"PAR1" + os.urandom(2048) + b"PAR1"
    for key in keys:
        assert policy_allows(grant["fields"], gateway_bucket, key, len(parquet))
        assert upload(httpx, grant, key, parquet, name=key.rsplit("/", 1)[-1]).status_code == 204
    # Late in the run the grant still holds: its policy expires in a day, not an hour.
    assert policy_allows(grant["fields"], gateway_bucket, keys[0], len(parquet), now=time.time() + 20 * 3600)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=gateway_bucket)["Contents"]} == set(keys)


def test_no_grant_writes_outside_its_own_folder(client, gateway_bucket, s3_endpoint, request):
    """Another miner's folder, the bucket root, a look-alike prefix, an empty or oversized file: refused.

    On SeaweedFS each forbidden POST is also sent, and refused by the server itself.
    """
    grant = miner_grant(client)
    enforced = "seaweedfs" in request.node.callspec.id
    other = MINER2.ss58_address
    for key in (
        f"data/hotkey={other}/job_id=j/data.parquet",
        f"data/hotkey={MINER.ss58_address[:-1]}/x.json",
        f"data/hotkey={MINER.ss58_address}x/x.json",
        "models/pins/prod.json",
        "curated/listings.parquet",
    ):
        assert not policy_allows(grant["fields"], gateway_bucket, key, 2048), key
        if enforced:
            assert upload(httpx, grant, key, b"x" * 2048, name="x").status_code == 403, key
    if enforced:
        s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        assert not s3.list_objects_v2(Bucket=gateway_bucket).get("Contents")  # nothing landed
        tampered = {**grant, "fields": {**grant["fields"], "policy": grant["fields"]["policy"][:-4] + "AAA="}}
        inside = f"data/hotkey={MINER.ss58_address}/job_id=j/b.parquet"
        assert upload(httpx, tampered, inside, b"x" * 2048, name="b").status_code == 403  # signature
    inside = f"data/hotkey={MINER.ss58_address}/job_id=j/a.parquet"
    assert not policy_allows(grant["fields"], gateway_bucket, inside, 0)
    assert not policy_allows(grant["fields"], gateway_bucket, inside, 5 * 1024**3 + 1)
    assert not policy_allows({**grant["fields"], "acl": "public-read"}, gateway_bucket, inside, 10)


def test_resi_validator_keeps_one_grant_for_most_of_a_day(make_client):
    """``ensure_access`` re-asks when under 4,200 s remain: with 24 h URLs, twice a day, not every call."""
    for expiry, expected in (("86400", 2), ("3600", 289)):
        client = make_client(SN46_GATEWAY_URL_EXPIRY_S=expiry)
        cache = ValidatorGrantCache()
        for step in range(289):  # a call every 5 minutes for 24 h
            now = step * 300.0
            if cache.needs_grant(now):
                r = client.post(
                    "/get-validator-access", content=resi_validator_body(VALIDATOR, COLDKEY), headers=JSON
                )
                assert r.status_code == 200, r.text
                cache.took(r.json(), now)
        assert cache.requests == expected, expiry


def test_resi_validator_lists_and_sn13_validator_pages_and_downloads(client, gateway_bucket, s3_endpoint):
    """The resi validator's listings, then SN13's X-Tao paging through 1,051 keys and presigned GETs."""
    miner = MINER.ss58_address
    grant = miner_grant(client)
    document = zipcode_document(miner, EPOCH, "78701", 3)
    key = zipcode_key(grant, miner, EPOCH, "78701")
    assert upload(httpx, grant, key, document).status_code == 204
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    filler = [f"data/hotkey={miner}/job_id=filler/data_20261203_000000_{i:05d}.parquet" for i in range(1_050)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=gateway_bucket, Key=k, Body=b"x"), filler))

    access = client.post(
        "/get-validator-access", headers=JSON, content=resi_validator_body(VALIDATOR, COLDKEY)
    )
    assert access.status_code == 200, access.text
    first_page, token = listing(httpx.get(access.json()["urls"]["global"]["list_all_data"]).text)
    assert len(first_page) == 1_000 and token
    specific = client.post(
        "/get-miner-specific-access",
        headers=JSON,
        content=resi_miner_specific_body(VALIDATOR, COLDKEY, miner),
    )
    assert specific.status_code == 200 and specific.json()["prefix"] == f"data/hotkey={miner}/"

    keys, token, pages = [], None, 0
    while True:  # SN13's list_all_files_with_metadata: a fresh signed request per page
        payload = {"miner_hotkey": miner, **({"continuation_token": token} if token else {})}
        r = tao_post(client, "/get-miner-list", VALIDATOR, payload)
        assert r.status_code == 200, r.text
        page, token = listing(httpx.get(r.json()["list_url"]).text)
        keys, pages = keys + page, pages + 1
        if token is None:
            break
    assert pages == 2 and sorted(keys) == sorted([key, *filler])

    r = tao_post(
        client,
        "/get-file-presigned-urls",
        VALIDATOR,
        {"miner_hotkey": miner, "file_keys": [key, filler[0]], "expiry_hours": 3},
    )
    assert r.status_code == 200, r.text
    urls = r.json()["file_urls"]
    assert urls[key]["expires_in_seconds"] == 3 * 3600
    assert httpx.get(urls[key]["presigned_url"]).content == document
    assert httpx.get(urls[filler[0]]["presigned_url"]).content == b"x"


def test_resi_api_client_retries_get_the_grant(make_client):
    """``ResiLabsAPIClient`` resends one signed body up to 3 times: after a lost answer, and after a 429."""
    client = make_client(DAILY_LIMIT_PER_MINER="2")
    body = resi_miner_grant_body(MINER, COLDKEY)
    answers = [client.post("/get-folder-access", content=body, headers=JSON) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    assert client.get("/rate-limits").json()["total_used_today"] == 1

    assert (
        client.post(
            "/get-folder-access", content=resi_miner_grant_body(MINER, COLDKEY), headers=JSON
        ).status_code
        == 200
    )  # the day's second, and last, grant
    late = resi_miner_grant_body(MINER, COLDKEY)
    assert [client.post("/get-folder-access", content=late, headers=JSON).status_code for _ in range(3)] == [
        429,
        429,
        429,
    ]  # refused for quota, never "replay"
    assert client.get("/rate-limits").json()["total_used_today"] == 2
    # Its nonce was not spent: where quota allows (a gateway with a higher limit, same Redis), it passes.
    roomier = make_client(DAILY_LIMIT_PER_MINER="3")
    assert roomier.post("/get-folder-access", content=late, headers=JSON).status_code == 200


def _charge_then_die(redis_url: str, body: bytes) -> None:
    """A gateway worker that admitted and charged a file-URL request, then was SIGKILLed before answering.

    File URLs are presigned only once admitted, so this is the window where a charge has no answer yet.
    """
    import asyncio
    import json

    from sn46_pipelines.gateway.ledger import Claim, RedisLedger

    fields = json.loads(body)
    fingerprint = request_fingerprint("POST", "/get-file-presigned-urls", body)
    claim = Claim(f"sig:{fields['signature']}", fingerprint, 300)
    asyncio.run(RedisLedger(redis_url).admit(claim, f"validator:{fields['hotkey']}", 20_000, 500_000))
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_retry_after_the_worker_died_gets_its_urls_uncharged(
    client, redis_url, gateway_bucket, s3_endpoint
):
    miner = MINER.ss58_address
    key = f"data/hotkey={miner}/job_id=j/data_20261203_000000_1.parquet"
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=gateway_bucket, Key=key, Body=b"rows")
    body = json.dumps(file_urls_request(miner, [key])).encode()
    worker = multiprocessing.get_context("spawn").Process(target=_charge_then_die, args=(redis_url, body))
    worker.start()
    worker.join(60)
    assert worker.exitcode == -signal.SIGKILL
    assert client.get("/rate-limits").json()["total_used_today"] == 1  # charged, never answered

    retry = client.post("/get-file-presigned-urls", content=body, headers=JSON)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert httpx.get(retry.json()["file_urls"][key]["presigned_url"]).content == b"rows"
    again = client.post("/get-file-presigned-urls", content=body, headers=JSON)
    assert again.content == retry.content  # the rebuilt answer is now the one retries get
    assert client.get("/rate-limits").json()["total_used_today"] == 1
