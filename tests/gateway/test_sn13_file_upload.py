"""``POST /get-file-upload-url``: SN13's uploader, request for request, one presigned POST per file.

The client (:mod:`.clients`) signs ``{job_id, filename}`` with ``X-Tao`` headers, POSTs the answer's
fields unchanged, treats any 2xx as success and a 409 as "already uploaded". On SeaweedFS the exact-key
POST policy is enforced; on moto it is evaluated with :func:`.clients.policy_allows`.
"""

from __future__ import annotations

import os

import boto3
import httpx
import pytest

from sn46_pipelines.listings.keys import parse_upload_key
from tests.gateway.clients import (
    JSON,
    policy_allows,
    sn13_file_name,
    sn13_file_upload_body,
    sn13_upload,
    tao_headers,
)
from tests.gateway.helpers import MINER, MINER2, STRANGER, miner_request

PATH = "/get-file-upload-url"
JOB = "zillow_premium_zip_78701_sold"
PARQUET = b"PAR1" + os.urandom(4096) + b"PAR1"


def request_grant(client, filename: str, keypair=MINER, job_id: str = JOB) -> httpx.Response:
    body = sn13_file_upload_body(job_id, filename)
    return client.post(PATH, content=body, headers=tao_headers(keypair, body))


def used(client) -> int:
    return client.get("/rate-limits").json()["total_used_today"]


@pytest.mark.parametrize("s3_server", ["moto", "seaweedfs"])
def test_the_uploader_gets_a_grant_for_its_file_and_uploads_it(
    client, gateway_bucket, s3_endpoint, s3_server
):
    filename = sn13_file_name(150)
    r = request_grant(client, filename)
    assert r.status_code == 200, r.text
    answer = r.json()
    key = f"data/hotkey={MINER.ss58_address}/job_id={JOB}/{filename}"
    assert set(answer) == {"s3_key", "url", "fields", "expires_in_seconds", "method"}
    assert (answer["s3_key"], answer["fields"]["key"], answer["method"]) == (key, key, "POST")
    assert answer["expires_in_seconds"] == 86_400
    assert parse_upload_key(key).rows == 150  # a name ingest reads

    assert policy_allows(answer["fields"], gateway_bucket, key, len(PARQUET))
    assert sn13_upload(httpx, answer, filename, PARQUET).is_success
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    assert s3.get_object(Bucket=gateway_bucket, Key=key)["Body"].read() == PARQUET

    # The policy names exactly that key: not the next file, not another job.
    for other in (key.replace(filename, sn13_file_name(150)), key.replace(JOB, "another_job")):
        assert not policy_allows(answer["fields"], gateway_bucket, other, len(PARQUET))
        if s3_server == "seaweedfs":
            moved = {**answer, "fields": {**answer["fields"], "key": other}}
            assert sn13_upload(httpx, moved, filename, PARQUET).status_code == 403
            assert s3.list_objects_v2(Bucket=gateway_bucket, Prefix=other)["KeyCount"] == 0


def test_a_file_already_uploaded_is_409_and_charges_nothing(client):
    filename = sn13_file_name(10)
    answer = request_grant(client, filename).json()
    assert sn13_upload(httpx, answer, filename, PARQUET).is_success
    before = used(client)
    again = request_grant(client, filename)  # the uploader's next cycle, a fresh nonce
    assert again.status_code == 409  # the uploader skips a file on "409"
    assert again.json()["detail"] == f"File already exists: {answer['s3_key']}"
    assert used(client) == before
    # another miner's file of the same name is its own
    assert request_grant(client, filename, keypair=MINER2).status_code == 200


@pytest.mark.parametrize(
    ("job_id", "filename", "status"),
    [
        (JOB, "data_20261203_091502.parquet", 400),  # no row count
        (JOB, "data_20261203_091502_10_0123456789abcdef.json", 400),
        (JOB, "data_20261303_091502_10.parquet", 400),  # month 13
        (JOB, "../data_20261203_091502_10.parquet", 400),
        (JOB, "x/data_20261203_091502_10.parquet", 400),
        ("../other", "data_20261203_091502_10.parquet", 422),
        ("", "data_20261203_091502_10.parquet", 422),
    ],
    ids=["no-rows", "json", "bad-date", "dot-dot", "subfolder", "job-traversal", "no-job"],
)
def test_names_ingest_would_not_read_are_refused_uncharged(client, job_id, filename, status):
    r = request_grant(client, filename, job_id=job_id)
    assert r.status_code == status, r.text
    assert used(client) == 0


def test_an_exact_retry_gets_the_same_grant_uncharged(client):
    body = sn13_file_upload_body(JOB, sn13_file_name(5))
    headers = tao_headers(MINER, body)
    first = client.post(PATH, content=body, headers=headers)
    second = client.post(PATH, content=body, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content and second.headers["Idempotent-Replayed"] == "true"
    assert used(client) == 1


def test_only_a_registered_signer_of_this_exact_body_gets_a_grant(client):
    body = sn13_file_upload_body(JOB, sn13_file_name(5))
    # the legacy body fields are not a way in: this endpoint has no commitment string
    legacy = miner_request(job_id=JOB, filename=sn13_file_name(5))
    assert client.post(PATH, json=legacy).status_code == 401
    # signed for one file, sent for another
    other = sn13_file_upload_body(JOB, sn13_file_name(5))
    assert client.post(PATH, content=other, headers=tao_headers(MINER, body)).status_code == 401
    # signed by one key, claiming another
    forged = {**tao_headers(MINER2, body), "X-Tao-Signed-By": MINER.ss58_address}
    assert client.post(PATH, content=body, headers=forged).status_code == 401
    assert client.post(PATH, content=body, headers=tao_headers(STRANGER, body)).status_code == 403
    assert client.post(PATH, content=b"{}", headers={**tao_headers(MINER, b"{}"), **JSON}).status_code == 422
    assert used(client) == 0
