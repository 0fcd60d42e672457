"""A miner uploads through its policy with a multipart POST; a validator lists past 1,000 keys and downloads.

Each test runs on moto and on SeaweedFS. moto accepts POSTs that break the
policy's conditions, so there the conditions are asserted on the signed
policy document (``fields["policy"]``); SeaweedFS enforces them and the
signature as AWS and MinIO do, so there the upload itself proves the policy
is both usable and tight.
"""

from __future__ import annotations

import base64
import io
import json
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import unquote

import boto3
import dagster as dg
import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES
from sn46_pipelines.listings.keys import parse_upload_key, upload_key
from sn46_pipelines.objectstore import open_store
from tests.gateway.helpers import MINER, file_urls_request, miner_request, miner_specific_request

miner_upload_sensor = upload_sensor(AutomationSettings())

S3_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
JOB = "zillow_premium_zip_78701_sold"


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> str:
    """Both S3 servers: SeaweedFS enforces the POST policy's conditions and the signatures."""
    return request.param


def parquet_bytes(rows: int) -> bytes:
    table = synth_listings(
        np.random.default_rng(7),
        PLACES[0],
        np.arange(1, rows + 1),
        newest=datetime(2026, 11, 20, tzinfo=UTC),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def list_all(client, miner: str) -> tuple[list[str], int]:
    """Page through a miner's folder the way today's validators do: a fresh signed URL per page."""
    keys, token, pages = [], None, 0
    while True:
        extra = {"continuation_token": token} if token else {}
        r = client.post("/get-miner-specific-access", json=miner_specific_request(miner, **extra))
        assert r.status_code == 200, r.text
        listing = httpx.get(r.json()["miner_url"])
        assert listing.status_code == 200, listing.text
        root = ET.fromstring(listing.text)
        keys += [unquote(k.text) for k in root.findall(".//s3:Contents/s3:Key", S3_NS)]
        pages += 1
        if root.findtext("s3:IsTruncated", namespaces=S3_NS) != "true":
            return keys, pages
        token = root.findtext("s3:NextContinuationToken", namespaces=S3_NS)


def test_miner_uploads_and_validator_lists_and_downloads(client, gateway_bucket, s3_endpoint, monkeypatch):
    miner = MINER.ss58_address
    grant = client.post("/get-folder-access", json=miner_request(job_id=JOB))
    assert grant.status_code == 200, grant.text
    grant = grant.json()
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    assert ["starts-with", "$key", f"data/hotkey={miner}/job_id={JOB}/"] in policy["conditions"]
    assert ["content-length-range", 1, 5 * 1024**3] in policy["conditions"]

    data = parquet_bytes(rows=150)
    key = upload_key(miner, JOB, datetime(2026, 11, 20, 14, 30, 52, tzinfo=UTC), rows=150)
    assert key.startswith(grant["folder"])
    upload = httpx.post(
        grant["url"],
        data={**grant["fields"], "key": key},
        files={"file": ("upload.parquet", data, "application/octet-stream")},
    )
    assert upload.status_code in (200, 204), upload.text

    store = open_store(f"s3://{gateway_bucket}", endpoint_url=s3_endpoint)
    assert store.get(key) == data
    assert parse_upload_key(key).rows == pq.read_table(io.BytesIO(store.get(key))).num_rows == 150

    # Fill the folder past one listing page (S3 pages hold 1,000 keys).
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    filler = [f"data/hotkey={miner}/job_id=filler/part_{i:05d}.parquet" for i in range(1_050)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=gateway_bucket, Key=k, Body=b"x"), filler))

    keys, pages = list_all(client, miner)
    assert pages == 2
    assert sorted(keys) == sorted([key, *filler])

    r = client.post("/get-file-presigned-urls", json=file_urls_request(miner, [key]))
    assert r.status_code == 200, r.text
    download = httpx.get(r.json()["file_urls"][key]["presigned_url"])
    assert download.status_code == 200 and download.content == data

    # The upload stays in the bucket, and the upload sensor turns it into an ingest run for the miner.
    assert store.exists(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # the sensor opens the store by its URL
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, resources={"data_store": DataStoreResource(url=store.url)}
        )
        result = miner_upload_sensor(context)
    [request] = result.run_requests
    assert request.partition_key == miner
    assert request.tags["sn46/new_files"] == str(1 + len(filler))
    assert list(result.dynamic_partitions_requests[0].partition_keys) == [miner]
