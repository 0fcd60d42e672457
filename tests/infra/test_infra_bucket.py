"""`sn46 infra bucket` as a library: plan, apply against moto over HTTP, read back with boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sn46_pipelines.infra import (
    InfraError,
    ModelStoreLifecycleError,
    plan_environment,
    reconcile,
)
from sn46_pipelines.infra.defaults import DEFAULTS

KMS_KEY = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ABSENT = {
    "get_bucket_encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "get_public_access_block": "NoSuchPublicAccessBlockConfiguration",
    "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
    "get_bucket_cors": "NoSuchCORSConfiguration",
}


def assert_untouched(s3, bucket: str) -> None:
    """No configuration at all: what a fresh moto bucket has."""
    for operation, code in ABSENT.items():
        with pytest.raises(ClientError) as caught:
            getattr(s3, operation)(Bucket=bucket)
        assert caught.value.response["Error"]["Code"] == code, operation
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def statuses(results) -> dict[str, dict[str, str]]:
    return {r.bucket: {s.setting: s.status for s in r.settings} for r in results}


def test_the_plan_is_data_built_without_contacting_s3(env):
    plan = plan_environment(env.settings)
    doc = plan.to_dict()
    assert [b["bucket"] for b in doc["buckets"]] == [env.data_bucket, env.replica_bucket]
    data, replica = plan.buckets
    assert [s.name for s in data.stores] == ["data store", "model store"]
    assert [s.prefix for s in data.model_stores] == ["models/"]
    assert {r.id: r.prefix for r in data.lifecycle} == {
        "sn46-abort-incomplete-multipart": "",
        "sn46-curated-tiering": "curated/",
        "sn46-expire-rejected-aggregates": "aggregates/rejected/",
        "sn46-noncurrent-versions": "",
        "sn46-expired-delete-markers": "",
    }
    # The replica holds only a model store: no data rules, no browser uploads.
    assert {r.id for r in replica.lifecycle} == {
        "sn46-abort-incomplete-multipart",
        "sn46-noncurrent-versions",
        "sn46-expired-delete-markers",
    }
    assert replica.cors is None and data.cors.origins == DEFAULTS["test"].cors_origins
    assert data.versioning and replica.versioning
    assert_untouched(env.s3(), env.data_bucket)


def test_apply_writes_every_setting_and_reads_back(env):
    results = reconcile(plan_environment(env.settings), apply=True)
    assert all(r.confirmed for r in results)
    assert statuses(results)[env.data_bucket] == dict.fromkeys(
        ("encryption", "public-access-block", "lifecycle", "cors", "versioning"), "changed"
    )

    s3 = env.s3()
    for bucket in (env.data_bucket, env.replica_bucket):
        encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert encryption["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=env.data_bucket)["Rules"]}
    days = DEFAULTS["test"]
    assert rules["sn46-curated-tiering"]["Filter"] == {"Prefix": "curated/"}
    assert rules["sn46-curated-tiering"]["Transitions"] == [
        {"Days": days.curated_transition_days, "StorageClass": "INTELLIGENT_TIERING"}
    ]
    assert rules["sn46-expire-rejected-aggregates"]["Expiration"] == {"Days": days.rejected_aggregates_days}
    assert rules["sn46-abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": days.abort_multipart_days
    }
    assert rules["sn46-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": days.noncurrent_days
    }
    assert rules["sn46-expired-delete-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    # Nothing reaching models/ expires or archives current objects.
    for rule in rules.values():
        prefix = rule["Filter"]["Prefix"]
        if "models/".startswith(prefix) or prefix.startswith("models/"):
            assert "Days" not in rule.get("Expiration", {}) and "Transitions" not in rule

    (cors,) = s3.get_bucket_cors(Bucket=env.data_bucket)["CORSRules"]
    assert sorted(cors["AllowedMethods"]) == ["POST", "PUT"]
    assert cors["AllowedOrigins"] == list(days.cors_origins)
    assert cors["ExposeHeaders"] == ["ETag"]
    with pytest.raises(ClientError):  # uploads never go to the replica
        s3.get_bucket_cors(Bucket=env.replica_bucket)


def test_a_second_apply_changes_nothing(env):
    plan = plan_environment(env.settings)
    reconcile(plan, apply=True)
    again = reconcile(plan, apply=True)
    assert all(r.confirmed and not r.changed for r in again)
    assert set(statuses(again)[env.data_bucket].values()) == {"unchanged"}


def test_diff_reads_but_never_writes(env):
    results = reconcile(plan_environment(env.settings), apply=False)
    assert set(statuses(results)[env.data_bucket].values()) == {"would change"}
    assert all(r.confirmed is None for r in results)
    assert_untouched(env.s3(), env.data_bucket)
    assert_untouched(env.s3(), env.replica_bucket)


def test_rules_and_cors_entries_of_others_are_kept(env):
    s3 = env.s3()
    theirs = {
        "ID": "team-logs",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Expiration": {"Days": 3},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=env.data_bucket, LifecycleConfiguration={"Rules": [theirs]})
    s3.put_bucket_cors(
        Bucket=env.data_bucket,
        CORSConfiguration={
            "CORSRules": [
                {"ID": "dashboard", "AllowedMethods": ["GET"], "AllowedOrigins": ["https://dash.example.org"]}
            ]
        },
    )
    plan = plan_environment(env.settings)
    reconcile(plan, apply=True)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=env.data_bucket)["Rules"]}
    assert rules["team-logs"]["Expiration"] == {"Days": 3} and "sn46-curated-tiering" in rules
    assert {r["ID"] for r in s3.get_bucket_cors(Bucket=env.data_bucket)["CORSRules"]} == {
        "dashboard",
        "sn46-browser-uploads",
    }
    assert not any(r.changed for r in reconcile(plan, apply=True))
    # Dropping our origins removes our CORS rule and only ours.
    reconcile(plan_environment(env.settings, cors_origins=()), apply=True)
    assert [r["ID"] for r in s3.get_bucket_cors(Bucket=env.data_bucket)["CORSRules"]] == ["dashboard"]


def test_a_rule_of_others_reaching_the_model_store_stops_everything(env):
    """Checked on the merged configuration before any bucket is written."""
    s3 = env.s3()
    archive = {
        "ID": "cheap-archive",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
    }
    s3.put_bucket_lifecycle_configuration(Bucket=env.data_bucket, LifecycleConfiguration={"Rules": [archive]})
    with pytest.raises(ModelStoreLifecycleError) as caught:
        reconcile(plan_environment(env.settings), apply=True)
    message = str(caught.value)
    assert (
        "'cheap-archive'" in message and f"s3://{env.data_bucket}/models" in message and "GLACIER" in message
    )
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket=env.data_bucket)
    assert_untouched(s3, env.replica_bucket)


def test_a_missing_bucket_is_named_and_nothing_is_written(env, monkeypatch):
    monkeypatch.setenv("SN46_REPLICA_STORE", "s3://sn46-no-such-bucket-anywhere/models")
    with pytest.raises(
        InfraError, match=r"s3://sn46-no-such-bucket-anywhere: bucket does not exist .*replica"
    ):
        reconcile(plan_environment(env.settings), apply=True)
    assert_untouched(env.s3(), env.data_bucket)


def test_kms_encryption_with_a_bucket_key(env):
    reconcile(plan_environment(env.settings, kms_key=KMS_KEY), apply=True)
    (rule,) = env.s3().get_bucket_encryption(Bucket=env.data_bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule == {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY},
        "BucketKeyEnabled": True,
    }
    # Switching back to SSE-S3 is a change, then stable.
    plan = plan_environment(env.settings)
    assert statuses(reconcile(plan, apply=True))[env.data_bucket]["encryption"] == "changed"
    assert statuses(reconcile(plan, apply=True))[env.data_bucket]["encryption"] == "unchanged"


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("alias/sn46", "give the key's ARN"),
        ("arn:aws:kms:eu-west-1:111122223333:key/abc", "is in eu-west-1, but the buckets are in us-east-2"),
    ],
)
def test_a_kms_key_that_cannot_work_is_refused(env, key, needle):
    with pytest.raises(InfraError, match=needle):
        plan_environment(env.settings, kms_key=key)


@pytest.mark.parametrize("origin", ["*", "https://app.example.org/upload", "app.example.org"])
def test_a_cors_origin_must_be_scheme_and_host(env, origin):
    with pytest.raises(InfraError, match="expected scheme://host"):
        plan_environment(env.settings, cors_origins=(origin,))


def test_skipped_settings_are_left_alone(env):
    results = reconcile(plan_environment(env.settings), apply=True, skip=("cors", "public-access-block"))
    assert statuses(results)[env.data_bucket]["cors"] == "skipped"
    with pytest.raises(ClientError):
        env.s3().get_bucket_cors(Bucket=env.data_bucket)
    with pytest.raises(InfraError, match="cannot skip colour"):
        reconcile(plan_environment(env.settings), skip=("colour",))


def test_a_data_only_bucket_keeps_its_versioning_as_it_is(env, monkeypatch):
    models = f"{env.data_bucket}-models"
    env.create_bucket(models)
    monkeypatch.setenv("SN46_MODEL_STORE", f"s3://{models}/models")
    plan = plan_environment(env.settings)
    data = plan.buckets[0]
    assert not data.versioning and "data store only" in data.versioning_why
    assert {r.id for r in data.lifecycle} == {
        "sn46-abort-incomplete-multipart",
        "sn46-curated-tiering",
        "sn46-expire-rejected-aggregates",
    }
    assert statuses(reconcile(plan, apply=True))[env.data_bucket]["versioning"] == "unmanaged"
    assert "Status" not in env.s3().get_bucket_versioning(Bucket=env.data_bucket)


def test_local_folders_and_overlapping_stores_are_refused(env, monkeypatch):
    monkeypatch.setenv("SN46_ENV", "local")
    monkeypatch.delenv("SN46_DATA_STORE")
    with pytest.raises(InfraError, match="need S3 stores"):
        plan_environment(env.settings)
    monkeypatch.setenv("SN46_ENV", "test")
    monkeypatch.setenv("SN46_DATA_STORE", f"s3://{env.data_bucket}/models/data")
    with pytest.raises(InfraError, match="contains the data store"):
        plan_environment(env.settings)


def test_our_own_rules_are_checked_too(env, monkeypatch):
    """A model store placed under aggregates/rejected/ would be expired by our rule: refused at plan time."""
    monkeypatch.setenv("SN46_MODEL_STORE", f"s3://{env.data_bucket}/aggregates/rejected/models")
    with pytest.raises(ModelStoreLifecycleError, match=r"'sn46-expire-rejected-aggregates'.*would expire"):
        plan_environment(env.settings)
