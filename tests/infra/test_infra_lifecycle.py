"""The lifecycle rules and the model-store invariant: never expire or archive what the model store reads."""

from __future__ import annotations

import pytest

from sn46_pipelines.infra import InfraError, LifecycleRule, ModelStoreLifecycleError, check_model_store_safe
from sn46_pipelines.infra.locations import s3_location

MODELS = s3_location("model_store", "s3://bkt/models")
REPLICA = s3_location("replica_store", "s3://bkt-dr/models")


def check(*rules: LifecycleRule | dict, bucket: str = "bkt") -> None:
    check_model_store_safe(
        bucket, [r.to_s3() if isinstance(r, LifecycleRule) else r for r in rules], [MODELS, REPLICA]
    )


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        (LifecycleRule("sn46-tidy", "", expire_days=30), "would expire its objects"),
        (LifecycleRule("sn46-tidy", "models/blobs/", expire_days=30), "would expire its objects"),
        (LifecycleRule("sn46-tidy", "mod", expire_days=30), "would expire its objects"),
        (LifecycleRule("sn46-cold", "models/", transition_days=90, storage_class="GLACIER"), "GLACIER"),
        (LifecycleRule("sn46-cold", "", transition_days=180, storage_class="DEEP_ARCHIVE"), "DEEP_ARCHIVE"),
    ],
)
def test_a_rule_reaching_the_model_store_is_rejected(rule, needle):
    with pytest.raises(ModelStoreLifecycleError) as caught:
        check(rule)
    message = str(caught.value)
    assert needle in message
    assert f"'{rule.id}'" in message and "s3://bkt/models" in message and message.startswith("s3://bkt: ")


def test_the_replica_is_protected_in_its_own_bucket_only():
    bad = LifecycleRule("sn46-tidy", "models/", expire_days=1)
    with pytest.raises(ModelStoreLifecycleError, match="model-store replica s3://bkt-dr/models"):
        check(bad, bucket="bkt-dr")
    check(bad, bucket="some-other-bucket")


@pytest.mark.parametrize(
    "rule",
    [
        LifecycleRule("sn46-abort", "", abort_multipart_days=7),
        LifecycleRule("sn46-old-versions", "", noncurrent_days=30),
        LifecycleRule("sn46-markers", "", expire_delete_markers=True),
        LifecycleRule("sn46-readable", "models/", transition_days=30, storage_class="STANDARD_IA"),
        LifecycleRule("sn46-readable", "", transition_days=0, storage_class="GLACIER_IR"),
        LifecycleRule("sn46-elsewhere", "curated/", expire_days=1),
        LifecycleRule("sn46-elsewhere", "modelsx/", transition_days=1, storage_class="DEEP_ARCHIVE"),
    ],
)
def test_rules_that_leave_current_model_objects_readable_pass(rule):
    check(rule)


def test_rules_of_others_are_read_in_every_filter_shape():
    with pytest.raises(ModelStoreLifecycleError, match="'legacy'"):
        check({"ID": "legacy", "Status": "Enabled", "Prefix": "models/", "Expiration": {"Days": 1}})
    with pytest.raises(ModelStoreLifecycleError, match="'big-files'"):
        check(
            {
                "ID": "big-files",
                "Status": "Enabled",
                "Filter": {"And": {"Prefix": "models/", "ObjectSizeGreaterThan": 1024}},
                "Expiration": {"Days": 1},
            }
        )
    with pytest.raises(ModelStoreLifecycleError, match=r"'\(no ID\)'"):
        check(
            {
                "Status": "Enabled",
                "Filter": {"ObjectSizeGreaterThan": 1},
                "Expiration": {"Date": "2030-01-01"},
            }
        )
    # The model store writes untagged objects, so a rule that needs a tag never reaches them;
    # a disabled rule does nothing.
    check(
        {
            "ID": "tagged",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "tmp", "Value": "1"}},
            "Expiration": {"Days": 1},
        }
    )
    check({"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ModelStoreLifecycleError) as caught:
        check(
            LifecycleRule("sn46-a", "", expire_days=5),
            LifecycleRule("sn46-b", "models/", transition_days=1, storage_class="GLACIER"),
        )
    assert "'sn46-a'" in str(caught.value) and "'sn46-b'" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"id": "mine", "prefix": "", "expire_days": 1}, "start with 'sn46-'"),
        ({"id": "sn46-x", "prefix": ""}, "at least one action"),
        ({"id": "sn46-x", "prefix": "", "transition_days": 40}, "both transition_days and storage_class"),
        (
            {"id": "sn46-x", "prefix": "", "transition_days": 40, "storage_class": "COLD"},
            "unknown storage class 'COLD'",
        ),
        (
            {"id": "sn46-x", "prefix": "", "transition_days": 10, "storage_class": "STANDARD_IA"},
            "no sooner than 30 days",
        ),
        ({"id": "sn46-x", "prefix": "", "expire_days": 0}, "expire_days must be at least 1"),
        ({"id": "sn46-x", "prefix": "", "expire_days": 3, "expire_delete_markers": True}, "not both"),
    ],
)
def test_a_rule_s3_would_refuse_is_refused_here_first(kwargs, needle):
    with pytest.raises(InfraError, match=needle):
        LifecycleRule(**kwargs)
