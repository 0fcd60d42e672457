"""Reading secrets from AWS Secrets Manager (moto over HTTP): values masked, errors value-free."""

from __future__ import annotations

import json

import pytest

from sn46_pipelines.config import ConfigError
from sn46_pipelines.secrets import (
    OBJECT_STORE,
    REDIS,
    MalformedSecretError,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretUnavailableError,
    object_store_credentials,
    read_secret,
)
from tests.secrets.secrets_helpers import READER_STATEMENTS, REGION, full_text, store_statements

#: Planted in every secret below; no message, repr or traceback may ever contain it.
VALUE = "wJalrXUtnFEMI-planted-secret-value"


def test_object_store_keys_are_read_and_every_value_is_masked(secretsmanager, secret_prefix):
    name = secret_prefix + "object-store"
    keys = {
        "aws_access_key_id": "AKIASN46EXAMPLE",
        "aws_secret_access_key": VALUE,
        "aws_session_token": VALUE + "t",
    }
    secretsmanager.create_secret(Name=name, SecretString=json.dumps(keys))
    credentials = object_store_credentials(name, region=REGION)
    assert credentials.access_key_id == "AKIASN46EXAMPLE"
    assert credentials.secret_access_key.get_secret_value() == VALUE
    token = credentials.session_token
    assert token is not None and token.get_secret_value() == VALUE + "t"
    assert credentials.origin == f"AWS Secrets Manager secret {name!r}"
    shown = f"{credentials} {credentials!r} {credentials.secret_access_key} {credentials.session_token!r}"
    assert VALUE not in shown and "**********" in shown


def test_a_secret_read_by_name_or_arn_gives_only_the_specs_keys(secretsmanager, secret_prefix):
    arn = secretsmanager.create_secret(
        Name=secret_prefix + "redis", SecretString=json.dumps({"url": VALUE, "note": "rotated monthly"})
    )["ARN"]
    for secret_id in (secret_prefix + "redis", arn):
        values = read_secret(secret_id, REDIS, region=REGION)
        assert list(values) == ["url"] and values["url"].get_secret_value() == VALUE
        assert VALUE not in repr(values)


def test_the_session_token_is_optional(secretsmanager, secret_prefix):
    name = secret_prefix + "object-store"
    secretsmanager.create_secret(
        Name=name,
        SecretString=json.dumps({"aws_access_key_id": "AKIASN46EXAMPLE", "aws_secret_access_key": VALUE}),
    )
    assert object_store_credentials(name, region=REGION).session_token is None


@pytest.mark.parametrize(
    ("secret_string", "message"),
    [
        (
            f"aws_secret_access_key={VALUE}",
            r"is not JSON; expected an object with keys aws_access_key_id, "
            r"aws_secret_access_key$",
        ),
        (json.dumps([VALUE]), r"is a JSON array; expected an object"),
        (json.dumps(VALUE), r"is a JSON string; expected an object"),
        (json.dumps({"aws_access_key_id": VALUE}), r"has no key 'aws_secret_access_key'; expected an object"),
        (
            json.dumps({"AWS_ACCESS_KEY_ID": VALUE, "AWS_SECRET_ACCESS_KEY": VALUE}),
            r"has no key 'aws_access_key_id' \(it has 'AWS_ACCESS_KEY_ID': the keys are lower case\)",
        ),
        (
            json.dumps({"aws_access_key_id": VALUE, "aws_secret_access_key": ""}),
            r"key 'aws_secret_access_key' of secret '.*' must be a non-empty string",
        ),
        (
            json.dumps({"aws_access_key_id": 12345, "aws_secret_access_key": VALUE}),
            r"key 'aws_access_key_id' of secret '.*' must be a non-empty string",
        ),
    ],
)
def test_a_malformed_secret_names_the_secret_and_key_never_the_value(
    secretsmanager, secret_prefix, secret_string, message
):
    name = secret_prefix + "object-store"
    secretsmanager.create_secret(Name=name, SecretString=secret_string)
    with pytest.raises(MalformedSecretError, match=message) as info:
        read_secret(name, OBJECT_STORE, region=REGION)
    assert name in str(info.value)
    assert VALUE not in full_text(info.value)
    assert isinstance(info.value, ConfigError)  # `sn46` prints it as one line and exits 2


def test_a_binary_secret_is_refused(secretsmanager, secret_prefix):
    name = secret_prefix + "redis"
    secretsmanager.create_secret(Name=name, SecretBinary=VALUE.encode())
    with pytest.raises(MalformedSecretError, match="holds binary data; expected a JSON object") as info:
        read_secret(name, REDIS, region=REGION)
    assert VALUE not in full_text(info.value)


def test_a_missing_secret_names_the_id_and_the_region(secretsmanager, secret_prefix):
    name = secret_prefix + "redis"
    secretsmanager.create_secret(Name=name, SecretString=json.dumps({"url": VALUE}))
    with pytest.raises(
        SecretNotFoundError,
        match=rf"secret '{secret_prefix}nothing' not found in "
        rf"AWS Secrets Manager \({REGION}\)",
    ):
        read_secret(secret_prefix + "nothing", REDIS, region=REGION)
    with pytest.raises(SecretNotFoundError, match=r"\(us-west-2\)"):  # secrets live in one region
        read_secret(name, REDIS, region="us-west-2")


def test_access_denied_says_which_permission_is_missing(
    secretsmanager, secret_prefix, s3_bucket, iam_user, iam_enforced, monkeypatch
):
    name = secret_prefix + "redis"
    secretsmanager.create_secret(Name=name, SecretString=json.dumps({"url": VALUE}))
    reader, store_only = iam_user(READER_STATEMENTS), iam_user(store_statements(s3_bucket))
    iam_enforced()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader.secret)
    assert read_secret(name, REDIS, region=REGION)["url"].get_secret_value() == VALUE
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", store_only.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", store_only.secret)
    with pytest.raises(
        SecretAccessDeniedError,
        match=rf"access denied reading secret '{name}' .*"
        r"secretsmanager:GetSecretValue",
    ) as info:
        read_secret(name, REDIS, region=REGION)
    assert VALUE not in full_text(info.value) and store_only.secret not in full_text(info.value)


def test_secrets_manager_out_of_reach_is_unavailable(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(
        SecretUnavailableError,
        match=r"secret 'sn46/prod/redis': cannot reach AWS Secrets "
        r"Manager \(us-east-2\): Could not connect",
    ):
        read_secret("sn46/prod/redis", REDIS, region=REGION)


def test_no_aws_credentials_at_all_is_unavailable(moto_endpoint, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SecretUnavailableError, match=r"no AWS credentials to ask AWS Secrets Manager"):
        read_secret("sn46/prod/redis", REDIS, region=REGION)
