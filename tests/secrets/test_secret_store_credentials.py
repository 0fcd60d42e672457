"""The round trip: a secret in Secrets Manager, an environment naming it, stores that sign with its keys.

moto checks every request's signature and IAM permissions here (``iam_enforced``):
the process's own identity may read the secret and nothing else, the secret's
keys may use the bucket and nothing else, so a write that lands proves which
keys signed it.
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from sn46_pipelines.config import load_settings
from sn46_pipelines.modelstore import ModelStore
from sn46_pipelines.objectstore import InvalidStoreURLError, StoreUnavailableError, open_store
from sn46_pipelines.objectstore.s3 import S3Credentials
from sn46_pipelines.secrets import SecretNotFoundError
from tests.secrets.secrets_helpers import full_text, store_statements


@pytest.fixture
def keys(store_secret):
    return store_secret.name, store_secret.store_user, store_secret.reader


def test_every_store_signs_with_the_secrets_keys(keys, environment, iam_enforced, s3_bucket):
    name, store_user, _ = keys
    environment(source="aws-secrets-manager", object_store=name)
    iam_enforced()
    settings = load_settings()

    data = settings.open_data_store()
    data.put("data/hotkey=h/job_id=j/a.parquet", b"listing bytes")
    assert data.get("data/hotkey=h/job_id=j/a.parquet") == b"listing bytes"
    assert [info.key for info in data.list("data/")] == ["data/hotkey=h/job_id=j/a.parquet"]
    override = settings.open_store(f"s3://{s3_bucket}/elsewhere")  # an overridden URL gets the same keys
    for opened in (settings.open_model_store(), settings.open_replica_store(), override):
        opened.put_if_absent("probe", b"ok")
        assert opened.get("probe") == b"ok"
    assert data.client._request_signer._credentials.access_key == store_user.key_id

    # The process's own identity (boto3's default chain) may read the secret, not the bucket.
    with pytest.raises(StoreUnavailableError, match=r"access denied"):
        open_store(f"s3://{s3_bucket}", region=settings.region).put("denied", b"x")


def test_the_model_store_commits_through_the_secrets_keys(keys, environment, iam_enforced, tmp_path):
    name, _, _ = keys
    environment(source="aws-secrets-manager", object_store=name)
    iam_enforced()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "model.pt").write_bytes(b"weights")
    store = ModelStore(load_settings().open_model_store())
    record = store.commit(checkpoint, message="signed with the secret's keys")
    assert store.get("head").version_id == record.version_id


def test_a_wrong_key_in_the_secret_names_the_secret_never_the_value(
    keys, secretsmanager, environment, iam_enforced, s3_bucket
):
    name, store_user, _ = keys
    wrong = store_user.secret[::-1]
    secretsmanager.put_secret_value(
        SecretId=name,
        SecretString=json.dumps({"aws_access_key_id": store_user.key_id, "aws_secret_access_key": wrong}),
    )
    environment(source="aws-secrets-manager", object_store=name)
    iam_enforced()
    expected = rf"\(SignatureDoesNotMatch\); credentials from AWS Secrets Manager secret '{name}'"
    with pytest.raises(StoreUnavailableError, match=expected) as info:
        load_settings().open_data_store().get("anything")
    assert wrong not in full_text(info.value) and store_user.secret not in full_text(info.value)


def test_a_rotated_secret_is_used_by_the_next_store_opened(
    keys, secretsmanager, environment, iam_user, s3_bucket
):
    name, store_user, _ = keys
    environment(source="aws-secrets-manager", object_store=name)
    assert load_settings().object_store_credentials().access_key_id == store_user.key_id
    rotated = iam_user(store_statements(s3_bucket))
    secretsmanager.put_secret_value(
        SecretId=name,
        SecretString=json.dumps(
            {"aws_access_key_id": rotated.key_id, "aws_secret_access_key": rotated.secret}
        ),
    )
    assert load_settings().open_data_store().client._request_signer._credentials.access_key == rotated.key_id


def test_source_env_reads_no_secret_and_keeps_boto3s_chain(environment, s3_bucket, secret_prefix):
    environment(source="env", object_store=secret_prefix + "does-not-exist")
    settings = load_settings()
    assert settings.object_store_credentials() is None
    store = settings.open_data_store()
    store.put("k", b"v")  # conftest's variables sign, as they would on a developer's machine
    assert store.client._request_signer._credentials.access_key == "testing"


def test_folder_stores_read_no_secret(environment, secret_prefix, tmp_path, monkeypatch):
    environment(source="aws-secrets-manager", object_store=secret_prefix + "does-not-exist")
    monkeypatch.setenv("SN46_DATA_STORE", f"file://{tmp_path}/data")
    load_settings().open_data_store().put("k", b"v")
    with pytest.raises(InvalidStoreURLError, match="credentials apply to s3:// stores only"):
        open_store(f"file://{tmp_path}/x", credentials=S3Credentials("AKIASN46EXAMPLE", SecretStr("x")))


def test_a_missing_secret_stops_the_store_from_opening(environment, secret_prefix):
    environment(source="aws-secrets-manager", object_store=secret_prefix + "object-store")
    with pytest.raises(SecretNotFoundError, match=rf"secret '{secret_prefix}object-store' not found"):
        load_settings().open_data_store()


def test_secrets_manager_out_of_reach_makes_the_store_unavailable(
    environment, secret_prefix, s3_bucket, monkeypatch
):
    environment(source="aws-secrets-manager", object_store=secret_prefix + "object-store")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")
    with pytest.raises(
        StoreUnavailableError, match=rf"^s3://{s3_bucket}: secret '.*object-store': cannot reach"
    ):
        load_settings().open_data_store()


def test_empty_keys_are_refused_without_showing_them():
    with pytest.raises(ValueError, match=r"S3 credentials from a test: empty access key id or secret key"):
        S3Credentials("", SecretStr("not shown"), origin="a test")
