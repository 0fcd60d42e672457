"""Infra fixtures: an environment whose stores are moto buckets, and moto behind an IAM gate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from sn46_pipelines.config import Settings, load_settings

REGION = "us-east-2"  # config/test.yaml's region


@dataclass(frozen=True)
class Env:
    """The ``test`` environment pointed at two fresh moto buckets."""

    data_bucket: str
    replica_bucket: str
    endpoint: str

    @property
    def settings(self) -> Settings:
        return load_settings()

    def s3(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)

    def create_bucket(self, name: str) -> None:
        self.s3().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


@pytest.fixture
def env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Env:
    """SN46_ENV=test: data and model stores in one bucket, the replica in another, as in config/."""
    suffix = uuid.uuid4().hex[:12]
    data, replica = f"sn46-data-{suffix}", f"sn46-data-{suffix}-dr"
    created = Env(data, replica, moto_endpoint)
    for bucket in (data, replica):
        created.create_bucket(bucket)
    monkeypatch.setenv("SN46_ENV", "test")
    monkeypatch.setenv("SN46_DATA_STORE", f"s3://{data}")
    monkeypatch.setenv("SN46_MODEL_STORE", f"s3://{data}/models")
    monkeypatch.setenv("SN46_REPLICA_STORE", f"s3://{replica}/models")
    return created


@pytest.fixture(scope="module")
def gate(moto_endpoint: str) -> Iterator:
    """moto's S3 behind IAM policies (tests/infra/infra_gate.py); register keys in ``gate.policies``."""
    from tests.infra.infra_gate import IamGate

    server = IamGate({})
    server.url = server.start()
    yield server
    server.stop()
