"""Compare a bucket plan with the buckets, write the difference, and read it back.

Works against AWS, MinIO and moto alike (``AWS_ENDPOINT_URL`` or the
environment's ``endpoint_url``). Every bucket is read and every merged
lifecycle is checked before anything is written, so a plan that would break
the model-store invariant on one bucket changes no bucket at all. Rules and
CORS entries whose IDs do not start with ``sn46-`` belong to someone else:
they are kept (and still checked), only ours are replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .bucket import PUBLIC_ACCESS_BLOCK, SETTINGS, BucketPlan, EnvironmentPlan
from .errors import InfraError
from .lifecycle import MANAGED_PREFIX, canonical_rule, check_model_store_safe

#: The error code each GET answers when the bucket has no such configuration.
_ABSENT = {
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
    "NoSuchCORSConfiguration",
}


@dataclass(slots=True)
class SettingResult:
    """One setting of one bucket: what it was, what the plan wants, and what happened."""

    setting: str
    status: str
    """``unchanged``, ``changed``, ``would change``, ``unmanaged`` or ``skipped``."""
    current: Any
    planned: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "status": self.status,
            "current": self.current,
            "planned": self.planned,
        }


@dataclass(slots=True)
class BucketResult:
    """What reconciling one bucket did."""

    bucket: str
    settings: list[SettingResult] = field(default_factory=list)
    confirmed: bool | None = None
    """After ``--apply``: whether every managed setting read back exactly as planned."""
    mismatches: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(s.status in ("changed", "would change") for s in self.settings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "changed": self.changed,
            "confirmed": self.confirmed,
            "mismatches": self.mismatches,
            "settings": [s.to_dict() for s in self.settings],
        }


class _Bucket:
    """One bucket's configuration calls, with S3's failures turned into :class:`InfraError`.

    It signs with the caller's own AWS credentials (boto3's default chain: the
    admin's profile or role), never with the environment's object-store keys:
    bucket configuration is an administrator's act, and those keys should not
    be allowed to change it.
    """

    def __init__(self, plan: EnvironmentPlan, bucket: BucketPlan) -> None:
        from ..objectstore import MissingStoreError, StoreUnavailableError, open_store

        store = open_store(f"s3://{bucket.bucket}", endpoint_url=plan.endpoint_url, region=plan.region)
        holds = ", ".join(f"{s.name} {s.url}" for s in bucket.stores)
        try:
            store.check()
        except MissingStoreError as exc:
            raise InfraError(f"{exc} (it should hold the {holds}); create it first, then run again") from None
        except StoreUnavailableError as exc:
            # Not the store keys: bucket configuration signs with the administrator's own identity.
            raise InfraError(
                f"{exc}; `sn46 infra` signs with your own AWS credentials (a profile, a role or "
                "AWS_ACCESS_KEY_ID), never with the environment's object-store keys"
            ) from None
        self.name = bucket.bucket
        self.client = store.client  # type: ignore[attr-defined]  # open_store gave an S3 store for s3://

    def call(self, setting: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """Run one configuration call; ``None`` when a GET finds no configuration."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.name, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _ABSENT:
                return None
            if code == "NotImplemented" or status == 501:
                raise InfraError(
                    f"s3://{self.name}: this S3 server does not implement {operation} ({setting}); "
                    f"rerun with --skip {setting}"
                ) from None
            if code in ("AccessDenied", "403"):
                raise InfraError(
                    f"s3://{self.name}: access denied for {operation} ({setting}); the credentials need the "
                    "admin policy (sn46 infra iam --role admin)"
                ) from None
            message = exc.response.get("Error", {}).get("Message", "")
            raise InfraError(
                f"s3://{self.name}: {operation} failed: {code or status} {message}".rstrip()
            ) from None
        except BotoCoreError as exc:
            raise InfraError(f"s3://{self.name}: {operation} failed: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Setting:
    """How to read, plan and write one setting, and which part of what was read is compared and shown."""

    read: Callable[[_Bucket], Any]
    planned: Callable[[BucketPlan, Any], Any]
    write: Callable[[_Bucket, Any, Any], None]
    shown: Callable[[Any], Any] = lambda current: current


def _read_encryption(b: _Bucket) -> dict[str, Any] | None:
    answer = b.call("encryption", "get_bucket_encryption")
    return _encryption(answer["ServerSideEncryptionConfiguration"]) if answer else None


def _encryption(config: dict[str, Any]) -> dict[str, Any]:
    rule = config["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    out = {"SSEAlgorithm": default["SSEAlgorithm"]}
    if default["SSEAlgorithm"] != "AES256":  # a bucket key only means something for KMS
        out.update(
            KMSMasterKeyID=default.get("KMSMasterKeyID"), BucketKeyEnabled=bool(rule.get("BucketKeyEnabled"))
        )
    return out


def _write_encryption(b: _Bucket, planned: dict[str, Any], _: Any) -> None:
    default = {k: v for k, v in planned.items() if k != "BucketKeyEnabled"}
    rule = {
        "ApplyServerSideEncryptionByDefault": default,
        "BucketKeyEnabled": planned.get("BucketKeyEnabled", False),
    }
    b.call("encryption", "put_bucket_encryption", ServerSideEncryptionConfiguration={"Rules": [rule]})


def _read_public_access(b: _Bucket) -> dict[str, bool] | None:
    answer = b.call("public-access-block", "get_public_access_block")
    return dict(answer["PublicAccessBlockConfiguration"]) if answer else None


def _write_public_access(b: _Bucket, planned: dict[str, bool], _: Any) -> None:
    b.call("public-access-block", "put_public_access_block", PublicAccessBlockConfiguration=planned)


def _read_lifecycle(b: _Bucket) -> dict[str, Any] | None:
    answer = b.call("lifecycle", "get_bucket_lifecycle_configuration")
    if answer is None:
        return None
    return {
        "Rules": answer.get("Rules", []),
        "TransitionDefaultMinimumObjectSize": answer.get("TransitionDefaultMinimumObjectSize"),
    }


def _planned_lifecycle(plan: BucketPlan, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    theirs = [
        r for r in (current or {}).get("Rules", []) if not str(r.get("ID", "")).startswith(MANAGED_PREFIX)
    ]
    return _sorted_rules([*theirs, *(r.to_s3() for r in plan.lifecycle)])


def _lifecycle_rules(current: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    return None if current is None else _sorted_rules(current["Rules"])


def _sorted_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rules, key=lambda r: str(r.get("ID", "")))


def _write_lifecycle(b: _Bucket, planned: list[dict[str, Any]], current: dict[str, Any] | None) -> None:
    extra = {}
    if current and current.get("TransitionDefaultMinimumObjectSize"):  # keep the owner's choice
        extra["TransitionDefaultMinimumObjectSize"] = current["TransitionDefaultMinimumObjectSize"]
    b.call(
        "lifecycle", "put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": planned}, **extra
    )


def _read_cors(b: _Bucket) -> list[dict[str, Any]] | None:
    answer = b.call("cors", "get_bucket_cors")
    return _sorted_rules(answer["CORSRules"]) if answer else None


def _planned_cors(plan: BucketPlan, current: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    theirs = [r for r in current or [] if not str(r.get("ID", "")).startswith(MANAGED_PREFIX)]
    rules = [*theirs, *([plan.cors.to_s3()] if plan.cors else [])]
    return _sorted_rules(rules) or None


def _write_cors(b: _Bucket, planned: list[dict[str, Any]] | None, _: Any) -> None:
    if planned:
        b.call("cors", "put_bucket_cors", CORSConfiguration={"CORSRules": planned})
    else:
        b.call("cors", "delete_bucket_cors")


def _read_versioning(b: _Bucket) -> str:
    answer = b.call("versioning", "get_bucket_versioning") or {}
    return answer.get("Status") or "Off"


def _write_versioning(b: _Bucket, planned: str, _: Any) -> None:
    b.call("versioning", "put_bucket_versioning", VersioningConfiguration={"Status": planned})


_SETTINGS: dict[str, _Setting] = {
    "encryption": _Setting(
        _read_encryption, lambda p, _: _encryption(p.encryption.to_s3()), _write_encryption
    ),
    "public-access-block": _Setting(
        _read_public_access, lambda p, _: dict(PUBLIC_ACCESS_BLOCK), _write_public_access
    ),
    "lifecycle": _Setting(_read_lifecycle, _planned_lifecycle, _write_lifecycle, _lifecycle_rules),
    "cors": _Setting(_read_cors, _planned_cors, _write_cors),
    "versioning": _Setting(
        _read_versioning, lambda p, _: "Enabled" if p.versioning else None, _write_versioning
    ),
}


def _comparable(setting: str, value: Any) -> Any:
    """The value with only what decides behaviour, so S3's own spelling never shows up as a change."""
    if setting == "lifecycle" and value is not None:
        return [canonical_rule(r) for r in _sorted_rules(value)]
    if setting == "cors" and value is not None:
        return [{k: sorted(v) if isinstance(v, list) else v for k, v in r.items()} for r in value]
    return value


def reconcile(
    plan: EnvironmentPlan, *, apply: bool = False, skip: Collection[str] = ()
) -> list[BucketResult]:
    """Compare every bucket of ``plan`` with S3 and, with ``apply``, write what differs and read it back.

    Raises :class:`InfraError` (nothing written) for a missing bucket, an
    unsupported or denied call, or a lifecycle rule (ours or anyone's) that
    would reach a model store.
    """
    unknown = set(skip) - set(SETTINGS)
    if unknown:
        raise InfraError(f"cannot skip {', '.join(sorted(unknown))}: settings are {', '.join(SETTINGS)}")
    buckets = [(_Bucket(plan, b), b) for b in plan.buckets]
    states = [_read_all(bucket, skip) for bucket, _ in buckets]
    for (bucket, bucket_plan), state in zip(buckets, states, strict=True):
        if "lifecycle" in state:
            check_model_store_safe(
                bucket.name, _planned_lifecycle(bucket_plan, state["lifecycle"]), bucket_plan.model_stores
            )
    results = []
    for (bucket, bucket_plan), state in zip(buckets, states, strict=True):
        result = BucketResult(bucket.name)
        for name in SETTINGS:
            result.settings.append(_reconcile_one(bucket, bucket_plan, name, state, apply))
        if apply:
            _confirm(bucket, result)
        results.append(result)
    return results


def _read_all(bucket: _Bucket, skip: Collection[str]) -> dict[str, Any]:
    return {name: setting.read(bucket) for name, setting in _SETTINGS.items() if name not in skip}


def _reconcile_one(
    bucket: _Bucket, plan: BucketPlan, name: str, state: dict[str, Any], apply: bool
) -> SettingResult:
    if name not in state:
        return SettingResult(name, "skipped", None, None)
    setting, current = _SETTINGS[name], state[name]
    planned = setting.planned(plan, current)
    shown = setting.shown(current)
    if planned is None and name == "versioning":
        return SettingResult(name, "unmanaged", shown, None)
    if _comparable(name, shown) == _comparable(name, planned):
        return SettingResult(name, "unchanged", shown, planned)
    if apply:
        setting.write(bucket, planned, current)
    return SettingResult(name, "changed" if apply else "would change", shown, planned)


def _confirm(bucket: _Bucket, result: BucketResult) -> None:
    """Read every managed setting back and record any that differs from the plan."""
    for setting_result in result.settings:
        name = setting_result.setting
        if setting_result.status in ("skipped", "unmanaged"):
            continue
        setting = _SETTINGS[name]
        shown = setting.shown(setting.read(bucket))
        if _comparable(name, shown) != _comparable(name, setting_result.planned):
            result.mismatches.append(f"{name} reads back as {shown!r}, planned {setting_result.planned!r}")
    result.confirmed = not result.mismatches
