"""The gateway's SigV4 presigner against boto3's at the same frozen clock: the same signatures, byte for byte.

Covers path-style (moto, MinIO) and virtual-hosted (AWS) URLs, session
tokens, keys and tokens that need escaping, and POST policies. Then the
gateway's URLs are used for real against moto.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from sn46_pipelines.gateway.sigv4 import SigV4Presigner

NOW = datetime(2026, 11, 23, 13, 37, 42)
NOW_UNIX = (NOW - datetime(1970, 1, 1)).total_seconds() + 0.25


@pytest.fixture
def frozen_boto_clock(monkeypatch):
    import botocore.auth
    import botocore.signers

    for module in (botocore.auth, botocore.signers):
        monkeypatch.setattr(module, "get_current_datetime", lambda: NOW)


def make_client(endpoint: str | None, token: str | None = None, region: str = "us-east-2"):
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7",
        aws_session_token=token,
        region_name=region,
    )
    return session.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))


def same_url(ours: str, boto: str) -> None:
    a, b = urlsplit(ours), urlsplit(boto)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert sorted(parse_qsl(a.query)) == sorted(parse_qsl(b.query))


CASES = [
    ("http://127.0.0.1:5000", None),
    ("http://127.0.0.1:5000", "FQoGZXIvYXdzE//token+with/slashes=="),
    (None, None),  # AWS itself: virtual-hosted URLs
    ("https://minio.example.org", "tok"),
]


@pytest.mark.parametrize(("endpoint", "token"), CASES)
def test_urls_match_boto3(frozen_boto_clock, endpoint, token):
    client = make_client(endpoint, token)
    signer = SigV4Presigner(client, "sn46-bucket")
    for key in ("data/hotkey=5F/job_id=j/data_20250620_143052_150.parquet", "data/odd key+ü~(1).parquet"):
        boto = client.generate_presigned_url(
            "get_object", Params={"Bucket": "sn46-bucket", "Key": key}, ExpiresIn=3600
        )
        same_url(signer.object_url(key, 3600, now=NOW_UNIX), boto)
    for params, ours in [
        ({"Prefix": "data/hotkey="}, {"prefix": "data/hotkey="}),
        ({"Prefix": "data/hotkey=", "Delimiter": "/"}, {"prefix": "data/hotkey=", "delimiter": "/"}),
        (
            {"Prefix": "data/hotkey=5F/", "ContinuationToken": "1ueGcxLPR+x/Q=="},
            {"prefix": "data/hotkey=5F/", "continuation-token": "1ueGcxLPR+x/Q=="},
        ),
    ]:
        boto = client.generate_presigned_url(
            "list_objects_v2", Params={"Bucket": "sn46-bucket", **params}, ExpiresIn=21600
        )
        same_url(signer.list_url(ours, 21600, now=NOW_UNIX), boto)


@pytest.mark.parametrize(("endpoint", "token"), CASES)
def test_post_policy_matches_boto3(frozen_boto_clock, endpoint, token):
    client = make_client(endpoint, token)
    signer = SigV4Presigner(client, "sn46-bucket")
    key = "data/hotkey=5F/job_id=${filename}"
    fields = {"acl": "private", "x-amz-storage-class": "STANDARD"}
    conditions = [
        {"acl": "private"},
        {"x-amz-storage-class": "STANDARD"},
        ["content-length-range", 1024, 2**30],
    ]
    boto = client.generate_presigned_post(
        Bucket="sn46-bucket", Key=key, Fields=dict(fields), Conditions=list(conditions), ExpiresIn=3600
    )
    ours = signer.post(key, dict(fields), list(conditions), 3600, now=NOW_UNIX)
    assert ours == boto
    assert json.loads(base64.b64decode(ours["fields"]["policy"]))["expiration"] == "2026-11-23T14:37:42Z"


def test_signer_follows_rotating_credentials(frozen_boto_clock):
    client = make_client("http://127.0.0.1:5000")
    signer = SigV4Presigner(client, "sn46-bucket")
    before = signer.object_url("k", 60, now=NOW_UNIX)
    client._request_signer._credentials.secret_key = "rotated-secret"
    after = signer.object_url("k", 60, now=NOW_UNIX)
    assert before != after
    same_url(
        after,
        client.generate_presigned_url(
            "get_object", Params={"Bucket": "sn46-bucket", "Key": "k"}, ExpiresIn=60
        ),
    )


def test_urls_work_against_moto(s3_bucket, moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.put_object(Bucket=s3_bucket, Key="data/hotkey=5F/job_id=j/a b.parquet", Body=b"parquet-bytes")
    signer = SigV4Presigner(client, s3_bucket)
    got = httpx.get(signer.object_url("data/hotkey=5F/job_id=j/a b.parquet", 60))
    assert got.status_code == 200 and got.content == b"parquet-bytes"
    listing = httpx.get(signer.list_url({"prefix": "data/hotkey=5F/"}, 60))
    assert listing.status_code == 200 and "a%20b.parquet" in listing.text
