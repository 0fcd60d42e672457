"""Bucket set-up and least-privilege IAM policies for an environment's S3 stores, without Dagster.

>>> plan = plan_environment(load_settings("prod"))           # data, contacts nothing
>>> reconcile(plan, apply=True)                              # write what differs, read it back
>>> build_policies(load_settings("prod"), account_id="123456789012").policies["inference"]

``sn46 infra bucket`` and ``sn46 infra iam`` are the command-line faces
(docs/infra.md). Only :mod:`.apply` talks to S3, through boto3.
"""

from .apply import BucketResult, SettingResult, reconcile
from .bucket import SETTINGS, BucketPlan, CorsRule, Encryption, EnvironmentPlan, plan_environment
from .defaults import DEFAULTS, InfraDefaults
from .errors import InfraError, ModelStoreLifecycleError, UnsupportedPolicyError
from .iam import ROLES, SECRET_READERS, PolicySet, build_policies
from .lifecycle import LifecycleRule, check_model_store_safe
from .locations import EnvironmentStores, StoreLocation, environment_stores
from .simulate import Decision, Request, evaluate

__all__ = [
    "DEFAULTS",
    "ROLES",
    "SECRET_READERS",
    "SETTINGS",
    "BucketPlan",
    "BucketResult",
    "CorsRule",
    "Decision",
    "Encryption",
    "EnvironmentPlan",
    "EnvironmentStores",
    "InfraDefaults",
    "InfraError",
    "LifecycleRule",
    "ModelStoreLifecycleError",
    "PolicySet",
    "Request",
    "SettingResult",
    "StoreLocation",
    "UnsupportedPolicyError",
    "build_policies",
    "check_model_store_safe",
    "environment_stores",
    "evaluate",
    "plan_environment",
    "reconcile",
]
