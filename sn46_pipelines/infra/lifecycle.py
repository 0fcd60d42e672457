"""Lifecycle rules, and the invariant that keeps them away from the model store's objects.

The model store deletes its own objects (GC knows which versions are pinned
or still referenced) and reads any live object at any time, so a lifecycle
rule whose prefix reaches into a model store may neither expire current
objects nor move them to an archive class that needs a restore before a
read. Aborting stale multipart uploads and expiring *noncurrent* versions
stay allowed: neither touches an object the store can see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InfraError, ModelStoreLifecycleError
from .locations import StoreLocation

#: Rule IDs this tool owns; rules with other IDs are left as they are (but still checked).
MANAGED_PREFIX = "sn46-"
#: Classes that serve a GET at once.
READABLE_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"})
#: Classes whose objects must be restored (hours) before a GET succeeds.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: S3 refuses transitions into these classes sooner than 30 days after an object is written.
THIRTY_DAY_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    """One rule over the keys under ``prefix`` ("" is the whole bucket); ``why`` is shown in the plan."""

    id: str
    prefix: str
    why: str = field(default="", compare=False)
    transition_days: int | None = None
    storage_class: str | None = None
    expire_days: int | None = None
    noncurrent_days: int | None = None
    abort_multipart_days: int | None = None
    expire_delete_markers: bool = False

    def __post_init__(self) -> None:
        where = f"lifecycle rule {self.id!r}"
        if not self.id.startswith(MANAGED_PREFIX) or len(self.id) > 255:
            raise InfraError(
                f"{where}: IDs of managed rules start with {MANAGED_PREFIX!r} (at most 255 characters)"
            )
        actions = (self.transition_days, self.expire_days, self.noncurrent_days, self.abort_multipart_days)
        if all(a is None for a in actions) and not self.expire_delete_markers:
            raise InfraError(f"{where}: a rule needs at least one action")
        if (self.transition_days is None) != (self.storage_class is None):
            raise InfraError(f"{where}: a transition needs both transition_days and storage_class")
        if self.storage_class is not None:
            if self.storage_class not in READABLE_CLASSES | ARCHIVE_CLASSES:
                known = ", ".join(sorted(READABLE_CLASSES | ARCHIVE_CLASSES))
                raise InfraError(f"{where}: unknown storage class {self.storage_class!r}; use one of {known}")
            floor = 30 if self.storage_class in THIRTY_DAY_CLASSES else 0
            if self.transition_days is not None and self.transition_days < floor:
                raise InfraError(
                    f"{where}: S3 moves objects to {self.storage_class} no sooner than {floor} days "
                    f"after they are written, got {self.transition_days}"
                )
        for name in ("expire_days", "noncurrent_days", "abort_multipart_days"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InfraError(f"{where}: {name} must be at least 1, got {value}")
        if self.expire_days is not None and self.expire_delete_markers:
            raise InfraError(f"{where}: S3 takes expire_days or expire_delete_markers in one rule, not both")

    def to_s3(self) -> dict[str, Any]:
        """The rule as ``put_bucket_lifecycle_configuration`` takes it."""
        rule: dict[str, Any] = {"ID": self.id, "Status": "Enabled", "Filter": {"Prefix": self.prefix}}
        if self.transition_days is not None:
            rule["Transitions"] = [{"Days": self.transition_days, "StorageClass": self.storage_class}]
        if self.expire_days is not None:
            rule["Expiration"] = {"Days": self.expire_days}
        if self.expire_delete_markers:
            rule["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        if self.noncurrent_days is not None:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": self.noncurrent_days}
        if self.abort_multipart_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_multipart_days}
        return rule

    def actions(self) -> list[str]:
        """What the rule does, one phrase per action."""
        out = []
        if self.transition_days is not None:
            out.append(f"move to {self.storage_class} after {self.transition_days} days")
        if self.expire_days is not None:
            out.append(f"delete after {self.expire_days} days")
        if self.noncurrent_days is not None:
            out.append(f"delete noncurrent versions {self.noncurrent_days} days after they are replaced")
        if self.expire_delete_markers:
            out.append("remove delete markers left with no versions behind them")
        if self.abort_multipart_days is not None:
            out.append(f"abort multipart uploads unfinished after {self.abort_multipart_days} days")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "actions": self.actions(),
            "why": self.why,
            "s3": self.to_s3(),
        }


def rule_prefix(rule: Mapping[str, Any]) -> str:
    """The key prefix an S3 lifecycle rule applies to ("" for the whole bucket)."""
    filt = rule.get("Filter") or {}
    if "Prefix" in filt:
        return str(filt["Prefix"])
    if "And" in filt:
        return str(filt["And"].get("Prefix", ""))
    return str(rule.get("Prefix", ""))


def _needs_tags(rule: Mapping[str, Any]) -> bool:
    filt = rule.get("Filter") or {}
    return bool(filt.get("Tag") or (filt.get("And") or {}).get("Tags"))


def check_model_store_safe(
    bucket: str, rules: Iterable[Mapping[str, Any]], model_stores: Iterable[StoreLocation]
) -> None:
    """Raise :class:`ModelStoreLifecycleError` if an enabled rule would expire or archive model-store objects.

    ``rules`` are in S3's form, so rules written by anyone can be checked.
    Rules that need a tag are skipped: the model store writes untagged objects.
    """
    protected = [s for s in model_stores if s.bucket == bucket]
    problems = []
    for rule in rules:
        if rule.get("Status") != "Enabled" or _needs_tags(rule):
            continue
        prefix = rule_prefix(rule)
        for store in protected:
            if not (prefix.startswith(store.prefix) or store.prefix.startswith(prefix)):
                continue
            head = (
                f"lifecycle rule {rule.get('ID') or '(no ID)'!r} (prefix {prefix or '(whole bucket)'!r}) "
                f"reaches the {store.name} {store.url} and"
            )
            expiration = rule.get("Expiration") or {}
            if "Days" in expiration or "Date" in expiration:
                problems.append(f"{head} would expire its objects; only the model store's GC may delete them")
            for transition in rule.get("Transitions") or ():
                if transition.get("StorageClass") in ARCHIVE_CLASSES:
                    problems.append(
                        f"{head} would move its objects to {transition['StorageClass']}, which must be "
                        "restored before a read; model-store objects must stay readable at once"
                    )
    if problems:
        raise ModelStoreLifecycleError(f"s3://{bucket}: " + "; ".join(problems))


def canonical_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an S3 rule that decide what it does, spelled one way (for comparing plan and bucket)."""
    filt = {k: v for k, v in (rule.get("Filter") or {}).items() if k != "Prefix"}
    out: dict[str, Any] = {"ID": rule.get("ID"), "Status": rule.get("Status"), "Prefix": rule_prefix(rule)}
    if filt:
        out["Filter"] = filt
    expiration = {k: v for k, v in (rule.get("Expiration") or {}).items() if v not in (False, None)}
    if expiration:
        out["Expiration"] = expiration
    for key in (
        "Transitions",
        "NoncurrentVersionTransitions",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    ):
        if rule.get(key):
            out[key] = rule[key]
    return out
