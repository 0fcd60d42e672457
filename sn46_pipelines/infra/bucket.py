"""The bucket plan of an environment: encryption, public access, lifecycle, CORS and versioning.

The plan is data, built from ``load_settings()`` and the per-environment
defaults without contacting S3; :mod:`.apply` compares it with a bucket and
writes the difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from .defaults import DEFAULTS, InfraDefaults
from .errors import InfraError
from .lifecycle import LifecycleRule, check_model_store_safe
from .locations import EnvironmentStores, StoreLocation, environment_stores, partition

#: The settings a plan manages, in the order they are shown and applied.
SETTINGS = ("encryption", "public-access-block", "lifecycle", "cors", "versioning")

_KMS_KEY_ARN = re.compile(r"^arn:aws(?:-cn|-us-gov)?:kms:(?P<region>[a-z0-9-]+):\d{12}:key/[A-Za-z0-9-]+$")
_ORIGIN = re.compile(r"^https?://[^\s/*]+$")


@dataclass(frozen=True, slots=True)
class Encryption:
    """Default encryption of new objects: SSE-S3 (AES256), or SSE-KMS with ``kms_key`` and a bucket key."""

    kms_key: str | None = None

    @property
    def algorithm(self) -> str:
        return "aws:kms" if self.kms_key else "AES256"

    def to_s3(self) -> dict[str, Any]:
        default: dict[str, Any] = {"SSEAlgorithm": self.algorithm}
        if self.kms_key:
            default["KMSMasterKeyID"] = self.kms_key
        # A bucket key cuts KMS requests (and their cost) by reusing a data key per bucket for a while.
        return {
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bool(self.kms_key)}]
        }

    def describe(self) -> str:
        return f"SSE-KMS with {self.kms_key} (bucket key on)" if self.kms_key else "SSE-S3 (AES256)"


def check_kms_key(key: str, region: str) -> str:
    """A KMS key ARN in ``region``; IAM grants on keys name ARNs, and S3 needs a key of its own region."""
    match = _KMS_KEY_ARN.match(key)
    if match is None:
        raise InfraError(
            f"KMS key {key!r}: give the key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); "
            "IAM policies grant kms:Decrypt on key ARNs, not on aliases or bare IDs"
        )
    if match["region"] != region:
        raise InfraError(f"KMS key {key!r} is in {match['region']}, but the buckets are in {region}")
    return key


@dataclass(frozen=True, slots=True)
class CorsRule:
    """Browser uploads with presigned POST forms and PUT URLs from the listed origins."""

    origins: tuple[str, ...]

    ID = "sn46-browser-uploads"

    def __post_init__(self) -> None:
        for origin in self.origins:
            if not _ORIGIN.match(origin):
                raise InfraError(
                    f"CORS origin {origin!r}: expected scheme://host[:port] such as https://app.example.org "
                    "(no path, no '*': a wildcard would let any web page upload with a leaked URL)"
                )

    def to_s3(self) -> dict[str, Any]:
        return {
            "ID": self.ID,
            "AllowedMethods": ["POST", "PUT"],
            "AllowedOrigins": list(self.origins),
            # What a presigned PUT from a browser sends: its content type, an optional MD5 and the
            # SDKs' x-amz-* checksum headers.
            "AllowedHeaders": ["content-type", "content-md5", "x-amz-*"],
            # Browser multipart uploads read each part's ETag to complete the upload.
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        }


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """Everything the plan sets on one bucket."""

    bucket: str
    stores: tuple[StoreLocation, ...]
    model_stores: tuple[StoreLocation, ...]
    encryption: Encryption
    lifecycle: tuple[LifecycleRule, ...]
    cors: CorsRule | None
    versioning: bool
    versioning_why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "holds": [{"store": s.name, "url": s.url, "prefix": s.prefix} for s in self.stores],
            "model_store_prefixes": [s.prefix for s in self.model_stores],
            "encryption": {
                "algorithm": self.encryption.algorithm,
                "kms_key": self.encryption.kms_key,
                "s3": self.encryption.to_s3(),
            },
            "public_access_block": dict(PUBLIC_ACCESS_BLOCK),
            "lifecycle": [rule.to_dict() for rule in self.lifecycle],
            "cors": self.cors.to_s3() if self.cors else None,
            "versioning": {
                "status": "Enabled" if self.versioning else "unmanaged",
                "why": self.versioning_why,
            },
        }


#: Every public-access switch on: nothing in these buckets is ever public; miners and validators
#: reach objects only through presigned requests.
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True, slots=True)
class EnvironmentPlan:
    """The bucket plans of one environment."""

    env: str
    region: str
    partition: str
    endpoint_url: str | None
    buckets: tuple[BucketPlan, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "buckets": [b.to_dict() for b in self.buckets],
        }


def plan_environment(
    settings: Settings,
    *,
    kms_key: str | None = None,
    cors_origins: tuple[str, ...] | None = None,
    defaults: InfraDefaults | None = None,
) -> EnvironmentPlan:
    """The plan for every bucket of ``settings``' environment; contacts nothing."""
    stores = environment_stores(settings)
    defaults = defaults or DEFAULTS[settings.env]
    encryption = Encryption(check_kms_key(kms_key, settings.region) if kms_key else None)
    origins = defaults.cors_origins if cors_origins is None else cors_origins
    buckets = tuple(
        _bucket_plan(bucket, held, stores, defaults, encryption, tuple(dict.fromkeys(origins)))
        for bucket, held in stores.buckets().items()
    )
    return EnvironmentPlan(
        settings.env, settings.region, partition(settings.region), settings.endpoint_url, buckets
    )


def _bucket_plan(
    bucket: str,
    held: tuple[StoreLocation, ...],
    stores: EnvironmentStores,
    defaults: InfraDefaults,
    encryption: Encryption,
    origins: tuple[str, ...],
) -> BucketPlan:
    model_stores = tuple(s for s in held if s in stores.model_stores)
    versioning = bool(model_stores)
    rules = [
        LifecycleRule(
            "sn46-abort-incomplete-multipart",
            "",
            why="parts of uploads that never completed (a crashed checkpoint upload, an abandoned browser "
            "upload) are billed until aborted; completed objects are not touched",
            abort_multipart_days=defaults.abort_multipart_days,
        )
    ]
    if stores.data in held:
        rules += _data_rules(stores.data, defaults)
    if versioning:
        rules.append(
            LifecycleRule(
                "sn46-noncurrent-versions",
                "",
                why=f"versioning keeps what GC deletes and what pin moves and manifest swaps overwrite; "
                f"{defaults.noncurrent_days} days is the undo window, after which the bytes are freed",
                noncurrent_days=defaults.noncurrent_days,
            )
        )
        rules.append(
            LifecycleRule(
                "sn46-expired-delete-markers",
                "",
                why="a deleted key whose old versions expired leaves a delete marker that slows listings",
                expire_delete_markers=True,
            )
        )
    check_model_store_safe(bucket, (r.to_s3() for r in rules), model_stores)
    if versioning:
        why = (
            f"holds the {' and '.join(s.name for s in model_stores)}: versioning turns an overwritten "
            "pin or HEAD, or a GC deletion, into a noncurrent version that can be restored for "
            f"{defaults.noncurrent_days} days; S3 replication also requires it on both buckets"
        )
    else:
        why = (
            "data store only: no role may delete uploads, and curated files, aggregates and views are "
            "rebuilt from them; versioning would only keep every manifest and views rewrite"
        )
    return BucketPlan(
        bucket=bucket,
        stores=held,
        model_stores=model_stores,
        encryption=encryption,
        lifecycle=tuple(rules),
        cors=CorsRule(origins) if origins and stores.data in held else None,
        versioning=versioning,
        versioning_why=why,
    )


def _data_rules(data: StoreLocation, defaults: InfraDefaults) -> list[LifecycleRule]:
    from ..listings.layout import CURATED_ROOT, REJECTED_AGGREGATES_PREFIX

    return [
        LifecycleRule(
            "sn46-curated-tiering",
            data.key(CURATED_ROOT),
            why="curated listings and per-hotkey quarantine files are committed state (each hotkey's "
            "manifest names them; ingest deletes the files it replaces), so they never expire; "
            "old ones move to a class that still reads at once",
            transition_days=defaults.curated_transition_days,
            storage_class=defaults.curated_storage_class,
        ),
        LifecycleRule(
            "sn46-expire-rejected-aggregates",
            data.key(REJECTED_AGGREGATES_PREFIX),
            why="aggregate tables a blocking check rejected: kept for inspection, never read as current",
            expire_days=defaults.rejected_aggregates_days,
        ),
    ]
