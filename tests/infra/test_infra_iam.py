"""The IAM policy documents: accepted by IAM (moto over HTTP), scoped tightly, and the evaluator's rules."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from sn46_pipelines.infra import (
    ROLES,
    InfraError,
    Request,
    UnsupportedPolicyError,
    build_policies,
    evaluate,
)

ACCOUNT = "123456789012"
KMS_KEY = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def policies(env):
    return build_policies(env.settings, account_id=ACCOUNT).policies


def allowed(policy: dict, action: str, resource: str, **context: str) -> bool:
    return evaluate(
        policy, Request(action, resource, {k.replace("_", ":"): v for k, v in context.items()})
    ).allowed


def statements(policy: dict) -> list[dict]:
    return policy["Statement"]


def test_every_policy_is_accepted_by_iam(env, moto_endpoint, monkeypatch):
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "aws-secrets-manager")  # so every role has a policy
    docs = build_policies(env.settings, account_id=ACCOUNT, kms_key=KMS_KEY).policies
    assert set(docs) == set(ROLES)
    for role, doc in docs.items():
        created = iam.create_policy(PolicyName=f"sn46-test-{role}-{suffix}", PolicyDocument=json.dumps(doc))
        stored = iam.get_policy_version(PolicyArn=created["Policy"]["Arn"], VersionId="v1")["PolicyVersion"]
        document = stored["Document"]
        assert (json.loads(document) if isinstance(document, str) else document) == doc
        # Well inside IAM's 6,144-character limit for managed policies.
        assert len(json.dumps(doc, separators=(",", ":"))) < 6144
    # The same endpoint refuses a malformed document, so acceptance above means something.
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):
        iam.create_policy(
            PolicyName=f"sn46-test-bad-{suffix}",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}),
        )


def test_no_wildcard_actions_and_no_star_resources(policies):
    for role, doc in policies.items():
        sids = [s["Sid"] for s in statements(doc)]
        assert len(sids) == len(set(sids)), role
        for statement in statements(doc):
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"]), (role, statement["Sid"])
            assert "*" not in statement["Resource"], (role, statement["Sid"])


def test_s3_resources_name_only_the_environments_buckets(env, policies):
    buckets = {env.data_bucket, env.replica_bucket}
    for role, doc in policies.items():
        for statement in statements(doc):
            for arn in statement["Resource"]:
                if arn.startswith("arn:aws:s3:::"):
                    assert arn.removeprefix("arn:aws:s3:::").split("/", 1)[0] in buckets, (role, arn)


def test_listing_is_scoped_by_prefix_except_the_bare_bucket_check(policies):
    for role, doc in policies.items():
        for statement in statements(doc):
            if "s3:ListBucket" not in statement["Action"] or role == "admin":
                continue
            condition = statement["Condition"]
            assert condition == {"Null": {"s3:prefix": "true"}} or set(condition) == {"StringLike"}, role


def test_inference_reads_the_model_store_and_nothing_else(env, policies):
    doc = policies["inference"]
    actions = {a for s in statements(doc) for a in s["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}
    models = f"arn:aws:s3:::{env.data_bucket}/models"
    assert allowed(doc, "s3:GetObject", f"{models}/records/v0000000001.json")
    assert allowed(doc, "s3:ListBucket", f"arn:aws:s3:::{env.data_bucket}", s3_prefix="models/records/")
    assert not allowed(doc, "s3:ListBucket", f"arn:aws:s3:::{env.data_bucket}", s3_prefix="data/")
    assert not allowed(doc, "s3:GetObject", f"arn:aws:s3:::{env.data_bucket}/curated/hotkey=a/manifest.json")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not allowed(doc, action, f"{models}/pins/prod.json")


def test_gc_deletes_only_inside_the_model_store(env, policies):
    doc = policies["gc"]
    deleting = [s for s in statements(doc) if "s3:DeleteObject" in s["Action"]]
    assert deleting and all(
        arn.startswith(f"arn:aws:s3:::{env.data_bucket}/models/") for s in deleting for arn in s["Resource"]
    )
    models = f"arn:aws:s3:::{env.data_bucket}/models"
    assert allowed(doc, "s3:DeleteObject", f"{models}/blobs/sha256/ab/{'ab' * 32}")
    assert not allowed(doc, "s3:DeleteObject", f"{models}/records/v0000000001.json")  # records stay forever
    assert not allowed(
        doc, "s3:DeleteObject", f"arn:aws:s3:::{env.data_bucket}/data/hotkey=a/job_id=b/x.parquet"
    )
    assert not allowed(doc, "s3:PutObject", f"{models}/records/v0000000002.json")
    assert allowed(doc, "s3:PutObject", f"{models}/collected/v0000000001.json")


def test_training_writes_versions_but_never_deletes_them(env, policies):
    doc = policies["training"]
    models = f"arn:aws:s3:::{env.data_bucket}/models"
    assert allowed(doc, "s3:PutObject", f"{models}/records/v0000000007.json")
    assert allowed(doc, "s3:PutObject", f"{models}/pins/prod.json")
    assert not allowed(doc, "s3:DeleteObject", f"{models}/records/v0000000007.json")
    assert not allowed(doc, "s3:DeleteObject", f"{models}/blobs/sha256/ab/{'ab' * 32}")
    assert not allowed(doc, "s3:PutObject", f"{models}/collected/v0000000001.json")
    assert allowed(doc, "s3:GetObject", f"arn:aws:s3:::{env.data_bucket}/aggregates/miner_scores.parquet")
    assert not allowed(
        doc, "s3:GetObject", f"arn:aws:s3:::{env.data_bucket}/data/hotkey=a/job_id=b/x.parquet"
    )


def test_the_gateway_presigns_inside_miner_folders_only(env, policies):
    doc = policies["gateway"]
    data = f"arn:aws:s3:::{env.data_bucket}"
    upload = f"{data}/data/hotkey=5F3xyz/job_id=zillow_zip_78701/data_20250620_143052_150.parquet"
    assert allowed(doc, "s3:PutObject", upload)
    assert not allowed(doc, "s3:PutObjectAcl", upload)  # the presigned POST sets no ACL
    # Today's SN46 miners upload epoch/zipcode JSON documents: anywhere in the miner's folder is allowed
    # (the POST policy binds the hotkey; ingest checks the layout).
    epoch = f"{data}/data/hotkey=5F3xyz/epoch=2026-12-03T08-00-00/zipcode=78701/data_20261203_081500.json"
    assert allowed(doc, "s3:PutObject", epoch)
    assert not allowed(doc, "s3:PutObject", f"{data}/data/loose.parquet")  # outside every miner's folder
    assert not allowed(doc, "s3:PutObject", f"{data}/curated/hotkey=5F3xyz/manifest.json")
    assert allowed(doc, "s3:GetObject", upload)
    assert not allowed(doc, "s3:GetObject", f"{data}/models/pins/prod.json")
    assert allowed(doc, "s3:ListBucket", data, s3_prefix="data/hotkey=")
    assert allowed(doc, "s3:ListBucket", data, s3_prefix="data/hotkey=5F3xyz/")
    assert not allowed(doc, "s3:ListBucket", data, s3_prefix="curated/")
    assert not allowed(doc, "s3:DeleteObject", upload)


def test_the_pipeline_never_changes_uploads_or_model_history(env, policies):
    doc = policies["pipeline"]
    data = f"arn:aws:s3:::{env.data_bucket}"
    upload = f"{data}/data/hotkey=a/job_id=b/data_20250620_143052_150.parquet"
    assert allowed(doc, "s3:GetObject", upload)
    assert not allowed(doc, "s3:PutObject", upload) and not allowed(doc, "s3:DeleteObject", upload)
    assert allowed(doc, "s3:DeleteObject", f"{data}/curated/hotkey=a/listings-x.parquet")
    assert allowed(doc, "s3:PutObject", f"{data}/views/sn46.duckdb")
    assert not allowed(doc, "s3:PutObject", f"{data}/views/other.duckdb")
    assert not allowed(doc, "s3:DeleteObject", f"{data}/models/blobs/sha256/ab/{'ab' * 32}")


def test_replication_writes_the_replica_only(env, policies):
    doc = policies["replication"]
    replica = f"arn:aws:s3:::{env.replica_bucket}/models"
    assert allowed(doc, "s3:PutObject", f"{replica}/records/v0000000001.json")
    assert not allowed(doc, "s3:PutObject", f"arn:aws:s3:::{env.data_bucket}/models/records/v0000000001.json")
    assert not any("s3:DeleteObject" in s["Action"] for s in statements(doc))


def test_admin_configures_buckets_but_cannot_delete_them_or_open_them(env, policies):
    doc = policies["admin"]
    bucket = f"arn:aws:s3:::{env.replica_bucket}"
    assert allowed(doc, "s3:PutLifecycleConfiguration", bucket)
    assert allowed(doc, "s3:GetObjectVersion", f"{bucket}/models/records/v0000000001.json")
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy", "s3:PutBucketAcl", "s3:DeleteObjectVersion"):
        assert not allowed(doc, action, bucket) and not allowed(doc, action, f"{bucket}/x")


def test_secrets_go_to_the_processes_that_read_them(env, monkeypatch):
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "aws-secrets-manager")  # test.yaml lists the ids
    result = build_policies(env.settings, account_id=ACCOUNT)
    docs = result.policies

    def secrets(role: str) -> set[str]:
        return {
            arn
            for s in statements(docs[role])
            if "secretsmanager:GetSecretValue" in s["Action"]
            for arn in s["Resource"]
        }

    base = f"arn:aws:secretsmanager:us-east-2:{ACCOUNT}:secret:sn46/test"
    object_store = f"{base}/object-store-??????"
    for role in ("training", "inference", "gc", "replication", "gateway", "pipeline"):
        assert secrets(role) == {object_store}, role  # Settings.open_store reads it in the process
    # Injected at container start: only the execution role reads them (and admin, to check them).
    assert secrets("execution") == {f"{base}/redis-??????", f"{base}/dagster-postgres-??????"}
    assert secrets("admin") == secrets("execution") | {object_store}
    assert not allowed(docs["gateway"], "secretsmanager:GetSecretValue", f"{base}/redis-AbC123")
    assert allowed(docs["execution"], "secretsmanager:GetSecretValue", f"{base}/redis-AbC123")
    assert not allowed(docs["execution"], "secretsmanager:GetSecretValue", f"{base}/redis-extra-AbC123")
    assert any("sn46/test/object-store" in note and "not with its role" in note for note in result.notes)


def test_secrets_from_variables_need_no_grant(env, monkeypatch):
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "env")
    result = build_policies(env.settings, account_id=ACCOUNT)
    assert "execution" not in result.policies and any("no execution policy" in n for n in result.notes)
    assert not any(
        "secretsmanager:GetSecretValue" in s["Action"]
        for doc in result.policies.values()
        for s in statements(doc)
    )
    with pytest.raises(InfraError, match="the execution role has nothing to do in test"):
        build_policies(env.settings, roles=("execution",))


def test_a_secret_named_by_its_arn_is_granted_exactly(env, monkeypatch):
    arn = f"arn:aws:secretsmanager:us-east-2:{ACCOUNT}:secret:team/shared-keys-Q1w2E3"
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "aws-secrets-manager")
    monkeypatch.setattr(
        "sn46_pipelines.config.SecretsSettings.secret_id",
        lambda self, name: arn if name == "object-store" else None,
    )
    doc = build_policies(env.settings, roles=("inference",)).policies["inference"]
    (statement,) = [s for s in statements(doc) if s["Sid"] == "ReadSecrets"]
    assert statement["Resource"] == [arn]


def test_kms_grants_follow_reads_and_writes(env):
    docs = build_policies(env.settings, account_id=ACCOUNT, kms_key=KMS_KEY).policies
    via = {"kms:ViaService": "s3.us-east-2.amazonaws.com"}
    assert evaluate(docs["inference"], Request("kms:Decrypt", KMS_KEY, via)).allowed
    assert not evaluate(docs["inference"], Request("kms:GenerateDataKey", KMS_KEY, via)).allowed
    assert evaluate(docs["training"], Request("kms:GenerateDataKey", KMS_KEY, via)).allowed
    assert not evaluate(docs["training"], Request("kms:Decrypt", KMS_KEY)).allowed  # only through S3


def test_an_upload_events_queue_adds_exactly_its_arn(env, monkeypatch):
    monkeypatch.setenv(
        "SN46_UPLOAD_EVENTS_QUEUE", f"https://sqs.us-east-2.amazonaws.com/{ACCOUNT}/sn46-uploads"
    )
    doc = build_policies(env.settings, roles=("pipeline",)).policies["pipeline"]
    (statement,) = [s for s in statements(doc) if s["Sid"] == "UploadEvents"]
    assert statement["Action"] == ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    assert statement["Resource"] == [f"arn:aws:sqs:us-east-2:{ACCOUNT}:sn46-uploads"]


def test_the_pipeline_writes_and_reads_dagsters_step_logs_in_their_bucket_only(env):
    import yaml

    from sn46_pipelines.config import SOURCE_ROOT
    from sn46_pipelines.infra.iam import COMPUTE_LOGS_PREFIX

    instance = yaml.safe_load((SOURCE_ROOT / "deploy" / "dagster.prod.yaml").read_text())
    assert f"{instance['compute_logs']['config']['prefix']}/" == COMPUTE_LOGS_PREFIX  # the same place
    without = build_policies(env.settings, roles=("pipeline",))
    assert any("--compute-logs-bucket" in note for note in without.notes)
    logs = build_policies(
        env.settings, roles=("pipeline", "training"), compute_logs_bucket="sn46-dagster-logs"
    )
    doc, bucket = logs.policies["pipeline"], "arn:aws:s3:::sn46-dagster-logs"
    log_key = f"{bucket}/dagster/compute-logs/storage/run/step.out"
    assert allowed(doc, "s3:PutObject", log_key) and allowed(doc, "s3:GetObject", log_key)
    assert allowed(doc, "s3:ListBucket", bucket, s3_prefix="dagster/compute-logs/storage/run/")
    assert not allowed(doc, "s3:ListBucket", bucket, s3_prefix="other/")
    assert not allowed(doc, "s3:PutObject", f"{bucket}/other/key")
    assert not allowed(doc, "s3:DeleteObject", log_key)
    assert not allowed(
        logs.policies["training"], "s3:PutObject", log_key
    )  # only roles that Dagster runs take
    assert not any("--compute-logs-bucket" in note for note in logs.notes)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"account_id": "12345"}, "expected 12 digits"),
        ({"roles": ("janitor",)}, "unknown role janitor"),
    ],
)
def test_bad_arguments_are_named(env, kwargs, needle):
    with pytest.raises(InfraError, match=needle):
        build_policies(env.settings, **kwargs)


# -- the evaluator ---------------------------------------------------------------------------------


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_an_explicit_deny_wins_over_any_allow():
    doc = policy(
        {"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "NoPins", "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::b/pins/*"},
    )
    assert evaluate(doc, Request("s3:GetObject", "arn:aws:s3:::b/pins/x")).statement == "All"
    decision = evaluate(doc, Request("S3:PUTOBJECT", "arn:aws:s3:::b/pins/x"))  # actions ignore case
    assert not decision.allowed and decision.explicit_deny and decision.statement == "NoPins"


def test_resources_match_case_sensitively_with_both_wildcards():
    doc = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/v?/*.json"})
    assert evaluate(doc, Request("s3:GetObject", "arn:aws:s3:::b/v1/deep/x.json")).allowed
    assert not evaluate(doc, Request("s3:GetObject", "arn:aws:s3:::b/v10/x.json")).allowed
    assert not evaluate(doc, Request("s3:GetObject", "arn:aws:s3:::B/v1/x.json")).allowed
    assert not evaluate(doc, Request("s3:GetObject", "arn:aws:s3:::b/v1/x.jsonl")).allowed


def test_conditions_and_missing_keys():
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
    like = policy({**listing, "Condition": {"StringLike": {"s3:prefix": ["a/*", "b/*"]}}})
    assert evaluate(like, Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "b/c"})).allowed
    assert not evaluate(like, Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": ""})).allowed
    assert not evaluate(like, Request("s3:ListBucket", "arn:aws:s3:::b")).allowed  # key missing: no match
    if_exists = policy({**listing, "Condition": {"StringLikeIfExists": {"s3:prefix": "a/*"}}})
    assert evaluate(if_exists, Request("s3:ListBucket", "arn:aws:s3:::b")).allowed
    null = policy({**listing, "Condition": {"Null": {"s3:prefix": "true"}}})
    assert evaluate(null, Request("s3:ListBucket", "arn:aws:s3:::b")).allowed
    assert not evaluate(null, Request("s3:ListBucket", "arn:aws:s3:::b", {"S3:Prefix": ""})).allowed
    both = policy(
        {**listing, "Condition": {"StringEquals": {"s3:delimiter": "/"}, "StringLike": {"s3:prefix": "a/*"}}}
    )
    assert evaluate(
        both, Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "a/", "s3:delimiter": "/"})
    ).allowed
    assert not evaluate(both, Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "a/"})).allowed


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/x"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"},
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"StringNotLike": {"s3:prefix": "x"}},
        },
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"NullIfExists": {"s3:prefix": "x"}},
        },
        {"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"},
    ],
)
def test_what_the_evaluator_does_not_model_is_refused(statement):
    with pytest.raises(UnsupportedPolicyError):
        evaluate(policy(statement), Request("s3:GetObject", "arn:aws:s3:::b/x"))
