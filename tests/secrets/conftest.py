"""Secrets Manager, IAM and S3 on moto's server over HTTP, and an environment that reads its secrets there.

``iam_enforced`` turns on moto's request authentication (signatures checked
against IAM access keys, actions against the users' policies) for one test,
so a test can prove which keys a client signed with, not just that it worked.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.secrets.secrets_helpers import READER_STATEMENTS, REGION, store_statements


@dataclass(frozen=True)
class AccessKey:
    user: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class StoreSecret:
    """An object-store secret in Secrets Manager and the two identities around it."""

    name: str
    #: The keys inside the secret: full access to the test bucket, nothing else.
    store_user: AccessKey
    #: This process's own identity: it may read secrets and nothing else.
    reader: AccessKey


@pytest.fixture
def secretsmanager(moto_endpoint: str) -> Any:
    """A Secrets Manager client on moto, in the environment's region."""
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def secret_prefix() -> str:
    """A fresh ``sn46/<something>/`` namespace: moto keeps secrets for the whole session."""
    return f"sn46/t{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def iam_user(moto_endpoint: str) -> Callable[[list[dict[str, Any]]], AccessKey]:
    """Create an IAM user with an inline policy of ``statements`` and return its new access key."""
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")

    def create(statements: list[dict[str, Any]]) -> AccessKey:
        name = f"sn46-{uuid.uuid4().hex[:10]}"
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_user_policy(UserName=name, PolicyName="sn46", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return AccessKey(name, key["AccessKeyId"], key["SecretAccessKey"])

    return create


@pytest.fixture
def iam_enforced(moto_endpoint: str) -> Iterator[Callable[[], None]]:
    """Call it to make moto check every request's signature and IAM permissions until the test ends."""

    def reset_auth(count: str) -> None:
        request = urllib.request.Request(
            f"{moto_endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["status"] == "ok"

    yield lambda: reset_auth("0")
    reset_auth("inf")


@pytest.fixture
def environment(tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Select a ``prod`` environment on the moto bucket whose ``secrets`` section is the arguments."""

    def write(**secrets: str | None) -> Path:
        folder = tmp_path / "config"
        folder.mkdir(exist_ok=True)
        settings = {
            "data_store": f"s3://{s3_bucket}",
            "model_store": f"s3://{s3_bucket}/models",
            "replica_store": f"s3://{s3_bucket}/replica",
            "region": REGION,
            "secrets": secrets,
        }
        (folder / "prod.yaml").write_text(yaml.safe_dump(settings))
        monkeypatch.setenv("SN46_CONFIG_DIR", str(folder))
        monkeypatch.setenv("SN46_ENV", "prod")
        return folder

    return write


@pytest.fixture
def store_secret(secretsmanager, secret_prefix, s3_bucket, iam_user, monkeypatch) -> StoreSecret:
    """The object-store secret holds a bucket user's keys; the process itself runs as a secret reader.

    With ``iam_enforced``, a write that lands in the bucket proves the secret's keys signed it.
    """
    store_user, reader = iam_user(store_statements(s3_bucket)), iam_user(READER_STATEMENTS)
    name = secret_prefix + "object-store"
    secretsmanager.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"aws_access_key_id": store_user.key_id, "aws_secret_access_key": store_user.secret}
        ),
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader.secret)
    return StoreSecret(name, store_user, reader)
