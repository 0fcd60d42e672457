"""Least-privilege IAM policies for each identity that touches an environment's buckets.

Each role's policy allows exactly the S3 calls its code path makes (see
docs/infra.md for the call-by-call table), on exact bucket ARNs and key
prefixes taken from the environment's store URLs and from the layouts the
code itself uses (model-store areas, curated and aggregate prefixes, the
gateway's upload folders). How S3 authorises each call:

* GET and HEAD of an object need ``s3:GetObject``; a copy needs GetObject on
  the source and PutObject on the target.
* PUT, POST uploads and every step of a multipart upload need ``s3:PutObject``;
  aborting one needs ``s3:AbortMultipartUpload``; a canned ACL also needs
  ``s3:PutObjectAcl``.
* DeleteObject and each key of DeleteObjects need ``s3:DeleteObject``.
* ListObjectsV2 needs ``s3:ListBucket`` with the request's ``s3:prefix``;
  HeadBucket needs ``s3:ListBucket`` too, with no prefix at all, and S3 answers
  404 rather than 403 for a missing key only to callers holding ListBucket.
  The store's existence check and the model store's probes for the next
  record depend on both, hence each role's ``BucketCheck`` statement: ListBucket
  only when the request carries no ``s3:prefix``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..deploy.run_roles import RUN_ROLES
from ..listings.layout import (
    AGGREGATE_TABLES,
    AGGREGATES_PREFIX,
    AUDIT_ROOT,
    CURATED_ROOT,
    METAGRAPH_KEY,
    MINERS_PREFIX,
    UPLOAD_PREFIX,
    VIEWS_FILE_KEY,
    aggregate_key,
    miner_folder,
)
from .bucket import check_kms_key
from .errors import InfraError
from .locations import EnvironmentStores, StoreLocation, environment_stores, partition

#: Who reads each secret (see docs/secrets.md). The object-store keys are read by every process that
#: opens a store, when the environment takes them from Secrets Manager; the Redis URL and the
#: Postgres password are injected at container start, so only the task execution role reads them;
#: admin reads all three for ``sn46 config --check-secrets``.
SECRET_READERS = {
    "object-store": ("training", "inference", "gc", "replication", "gateway", "pipeline", "admin"),
    "redis": ("execution", "admin"),
    "dagster-postgres": ("execution", "admin"),
}

ROLES = {
    "training": "commits checkpoints and moves deployment pins (train_price_model, deploy_job, Pipes "
    "training pods); reads the curated listings and aggregates it trains on",
    "inference": "loads pinned or tracked versions and never writes (sn46 serve, sn46 store verify)",
    "gc": "garbage-collects the model store (gc_job's runs, sn46 store gc)",
    "replication": "copies what the replica lacks (replication_check_job's runs with repair, "
    "sn46 store replication-check --repair)",
    "gateway": "presigns miner uploads and validator listings and downloads (sn46 gateway); a URL dies "
    "with the credentials that signed it, so week-long URLs need an IAM user's keys, not a role",
    "pipeline": "the Dagster code location and run workers: sensor, ingest, aggregates, views, training "
    "commits and pin moves",
    "admin": "bucket set-up (sn46 infra bucket --apply), restores and exports; no bucket deletion, "
    "bucket policies or ACLs",
    "execution": "the ECS task execution role (or the secret-syncing operator's role) that injects "
    "REDIS_URL and DAGSTER_PG_PASSWORD at container start; attach AWS's "
    "AmazonECSTaskExecutionRolePolicy beside it for images and logs",
}

_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The policy documents of an environment, by role, and what an operator must know about them."""

    env: str
    account_id: str | None
    policies: dict[str, dict[str, Any]]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "account_id": self.account_id,
            "roles": {
                name: {"description": ROLES[name], "policy": doc} for name, doc in self.policies.items()
            },
            "notes": list(self.notes),
        }


@dataclass
class _Builder:
    """Accumulates one role's statements; listing grants are merged per bucket."""

    stores: EnvironmentStores
    account: str
    kms_key: str | None
    statements: list[dict[str, Any]] = field(default_factory=list)
    listed: dict[str, list[str]] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)

    @property
    def partition(self) -> str:
        return partition(self.stores.region)

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def allow(
        self, sid: str, actions: list[str], resources: list[str], condition: dict | None = None
    ) -> None:
        self.statements.append(_statement(sid, actions, resources, condition))

    def objects(self, sid: str, actions: list[str], store: StoreLocation, *areas: str) -> None:
        """``actions`` on the keys matching each area pattern inside ``store``."""
        self.touch(store)
        self.allow(sid, actions, [f"{self.bucket_arn(store.bucket)}/{store.key(a)}" for a in areas])

    def lists(self, store: StoreLocation, *areas: str) -> None:
        """ListObjectsV2 under each area of ``store`` (area patterns end in ``*``)."""
        self.touch(store)
        patterns = self.listed.setdefault(store.bucket, [])
        patterns += [store.key(a) for a in areas if store.key(a) not in patterns]

    def touch(self, store: StoreLocation) -> None:
        if store.bucket not in self.buckets:
            self.buckets.append(store.bucket)

    def kms(self, *, write: bool) -> None:
        if self.kms_key is None:
            return
        actions = ["kms:Decrypt", *(["kms:GenerateDataKey"] if write else [])]
        # Only through S3 in this region: the key cannot be used directly with these credentials.
        via = {"StringEquals": {"kms:ViaService": f"s3.{self.stores.region}.amazonaws.com"}}
        self.allow("BucketEncryptionKey", actions, [self.kms_key], via)

    def step_logs(self, bucket: str) -> None:
        """Dagster's step logs (deploy/dagster.prod.yaml's S3 compute logs): runs write, the UI reads."""
        arn = self.bucket_arn(bucket)
        prefix = {"StringLike": {"s3:prefix": [f"{COMPUTE_LOGS_PREFIX}*"]}}
        self.allow("ListStepLogs", ["s3:ListBucket"], [arn], prefix)
        self.allow("StepLogs", ["s3:GetObject", "s3:PutObject"], [f"{arn}/{COMPUTE_LOGS_PREFIX}*"])
        if bucket not in self.buckets:  # a missing log must read as 404, not 403: see BucketCheck
            self.buckets.append(bucket)

    def secrets(self, role: str, settings: Settings) -> None:
        """GetSecretValue on the secrets ``role`` reads, by the ids of the environment's ``secrets:``."""
        ids = [
            settings.secrets.secret_id(name) for name, readers in SECRET_READERS.items() if role in readers
        ]
        arns = [self.secret_arn(i) for i in ids if i]
        if arns:
            self.allow("ReadSecrets", ["secretsmanager:GetSecretValue"], arns)

    def secret_arn(self, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        # Secrets Manager appends six random characters to every secret's ARN.
        where = f"{self.partition}:secretsmanager:{self.stores.region}:{self.account}"
        return f"arn:{where}:secret:{secret_id}-??????"

    def document(self) -> dict[str, Any]:
        """The policy: per-bucket listing grants and the bare bucket check first, then the rest."""
        listing = [
            _statement(
                f"List{_camel(self._holder(bucket))}",
                ["s3:ListBucket"],
                [self.bucket_arn(bucket)],
                {"StringLike": {"s3:prefix": patterns}},
            )
            for bucket, patterns in self.listed.items()
        ]
        if self.buckets:
            listing.append(
                _statement(
                    "BucketCheck",
                    ["s3:ListBucket"],
                    [self.bucket_arn(b) for b in self.buckets],
                    {"Null": {"s3:prefix": "true"}},
                )
            )
        return {"Version": "2012-10-17", "Statement": [*listing, *self.statements]}

    def _holder(self, bucket: str) -> str:
        return next(s.name for s in self.stores.all if s.bucket == bucket)


def _statement(sid: str, actions: list[str], resources: list[str], condition: dict | None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _camel(words: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", words) if w)


def build_policies(
    settings: Settings,
    *,
    account_id: str | None = None,
    kms_key: str | None = None,
    roles: tuple[str, ...] | None = None,
    compute_logs_bucket: str | None = None,
) -> PolicySet:
    """The policy documents of ``roles`` (default: all) for ``settings``' environment.

    Without ``account_id`` the account field of Secrets Manager and SQS ARNs is ``*``.
    ``compute_logs_bucket`` (``DAGSTER_COMPUTE_LOGS_BUCKET`` of the production
    instance) gives the roles that Dagster runs take (pipeline, gc, replication) their step logs.
    """
    if account_id is not None and not _ACCOUNT.match(account_id):
        raise InfraError(f"account id {account_id!r}: expected 12 digits")
    unknown = set(roles or ()) - set(ROLES)
    if unknown:
        raise InfraError(f"unknown role {', '.join(sorted(unknown))}; roles are {', '.join(ROLES)}")
    stores = environment_stores(settings)
    key = check_kms_key(kms_key, settings.region) if kms_key else None
    policies, notes = {}, []
    for role in roles or tuple(ROLES):
        builder = _Builder(stores, account_id or "*", key)
        _ROLE_BUILDERS[role](builder, settings)
        if role in DAGSTER_RUN_ROLES and compute_logs_bucket:
            builder.step_logs(compute_logs_bucket)
        builder.secrets(role, settings)
        document = builder.document()
        if document["Statement"]:
            policies[role] = document
        elif roles:
            raise InfraError(f"the {role} role has nothing to do in {settings.env}: {_NO_SECRETS}")
        else:
            notes.append(f"no {role} policy: {_NO_SECRETS}")
    if not compute_logs_bucket and DAGSTER_RUN_ROLES & policies.keys():
        notes.append(
            "no compute-logs bucket: pass --compute-logs-bucket (DAGSTER_COMPUTE_LOGS_BUCKET) to let the "
            "roles Dagster runs take (pipeline, gc, replication) write and read Dagster's step logs"
        )
    if account_id is None:
        notes.append("no account id: secret and queue ARNs match any account ('*'); pass one to pin them")
    if (secret := settings.secrets.secret_id("object-store")) is not None:
        notes.append(
            f"this environment reads S3 keys from {secret!r}: every process then signs its S3 requests with "
            "those keys, not with its role, so the S3 statements above bind only where secrets.object_store "
            "is empty (task roles, the better choice on AWS); otherwise the keys' IAM user needs them all"
        )
    return PolicySet(settings.env, account_id, policies, tuple(notes))


#: Roles a Dagster run executes as: the run launcher's (pipeline), or a model-store job's own run role.
DAGSTER_RUN_ROLES = frozenset({"pipeline", *RUN_ROLES})

#: Where deploy/dagster.prod.yaml's S3ComputeLogManager keeps step logs (its ``prefix``, plus "/").
COMPUTE_LOGS_PREFIX = "dagster/compute-logs/"

_NO_SECRETS = "it only reads injected secrets, and this environment takes them from variables"


# -- what each role's code does --------------------------------------------------------------------


def _model_read(b: _Builder, store: StoreLocation) -> None:
    b.lists(store, "*")
    b.objects(f"Read{_camel(store.name)}", ["s3:GetObject"], store, "*")


def _training(b: _Builder, settings: Settings) -> None:
    _commits(b)
    _training_data(b)
    b.kms(write=True)


def _commits(b: _Builder) -> None:
    """Commits and pin moves on the model store."""
    from ..modelstore.layout import AUDIT, BLOBS, HEAD_HINT, INFLIGHT, PINS, RECORDS, SEGMENTS

    model = b.stores.model
    _model_read(b, model)
    # A commit: blobs (multipart when large), its intent, the record, the HEAD hint, a sealed
    # segment every 1,000 versions, an audit event; a deploy: the pin and its audit event.
    b.objects(
        "CommitVersions",
        ["s3:PutObject"],
        model,
        f"{BLOBS}*",
        f"{INFLIGHT}*",
        f"{RECORDS}*",
        HEAD_HINT,
        f"{SEGMENTS}*",
        f"{PINS}*",
        f"{AUDIT}*",
    )
    b.objects("AbortBlobUploads", ["s3:AbortMultipartUpload"], model, f"{BLOBS}*")
    # The commit removes its own intent; set_pin undoes a pin whose version GC took meanwhile.
    b.objects("RemoveIntentsAndPins", ["s3:DeleteObject"], model, f"{INFLIGHT}*", f"{PINS}*")


def _training_data(b: _Builder) -> None:
    """What ``training_listings`` reads: the committed curated files, the published aggregate tables
    and the metagraph snapshot (only registered miners' listings count)."""
    data = b.stores.data
    b.lists(data, f"{CURATED_ROOT}*")
    b.objects(
        "ReadCuratedData",
        ["s3:GetObject"],
        data,
        f"{CURATED_ROOT}*",
        *(aggregate_key(name) for name in AGGREGATE_TABLES),
        METAGRAPH_KEY,
    )


def _inference(b: _Builder, settings: Settings) -> None:
    _model_read(b, b.stores.model)
    b.kms(write=False)


def _gc(b: _Builder, settings: Settings) -> None:
    from ..modelstore.layout import AUDIT, BLOBS, COLLECTED, GC_LEASE, INFLIGHT

    model = b.stores.model
    _model_read(b, model)
    # The lease, one "collected" marker per version, and the run's audit event.
    b.objects("MarkCollected", ["s3:PutObject"], model, GC_LEASE, f"{COLLECTED}*", f"{AUDIT}*")
    # Blobs of collected versions, orphans, stale intents, markers of versions spared, and the lease.
    b.objects(
        "DeleteGarbage", ["s3:DeleteObject"], model, f"{BLOBS}*", f"{INFLIGHT}*", f"{COLLECTED}*", GC_LEASE
    )
    # Crash leftovers: incomplete multipart uploads of blobs, found by listing, sized, then aborted.
    under_model = {"StringLike": {"s3:prefix": [f"{model.key('')}*"]}}
    b.allow(
        "FindLeftoverUploads", ["s3:ListBucketMultipartUploads"], [b.bucket_arn(model.bucket)], under_model
    )
    b.objects(
        "AbortLeftoverUploads", ["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"], model, f"{BLOBS}*"
    )
    b.kms(write=True)


def _replication(b: _Builder, settings: Settings) -> None:
    from ..modelstore.layout import AUDIT, BLOBS, COLLECTED, HEAD_HINT, RECORDS

    replica = _replica(b.stores)
    _model_read(b, b.stores.model)
    _model_read(b, replica)
    b.objects(
        "RepairReplica",
        ["s3:PutObject"],
        replica,
        f"{BLOBS}*",
        f"{COLLECTED}*",
        f"{RECORDS}*",
        HEAD_HINT,
        f"{AUDIT}*",
    )
    b.objects("AbortReplicaBlobUploads", ["s3:AbortMultipartUpload"], replica, f"{BLOBS}*")
    b.kms(write=True)


def _gateway(b: _Builder, settings: Settings) -> None:
    data = b.stores.data
    miner_folders = miner_folder("*")  # data/hotkey=*/
    # Validators' listing URLs: all miners (prefix "data/hotkey=") and one miner's folder.
    b.lists(data, f"{MINERS_PREFIX}*")
    # Miners' presigned POST: anything in a miner's own folder (the POST policy binds the hotkey; the
    # layout, job_id or epoch/zipcode, is checked at ingest).
    b.objects("PresignUploads", ["s3:PutObject"], data, f"{miner_folders}*")
    # Validators' presigned GETs of files inside one miner's folder.
    b.objects("PresignDownloads", ["s3:GetObject"], data, f"{miner_folders}*")
    b.kms(write=True)


def _pipeline(b: _Builder, settings: Settings) -> None:
    data = b.stores.data
    b.lists(data, f"{UPLOAD_PREFIX}*", f"{CURATED_ROOT}*")
    # The views file is read back once: ObjectStore.upload answers with the stored object's etag.
    # The metagraph snapshot says who is registered (scored, and kept as a partition).
    b.objects(
        "ReadDataStore",
        ["s3:GetObject"],
        data,
        f"{UPLOAD_PREFIX}*",
        f"{CURATED_ROOT}*",
        f"{AGGREGATES_PREFIX}*",
        VIEWS_FILE_KEY,
        METAGRAPH_KEY,
    )
    # Ingest writes new curated and quarantine files and swaps the manifest, and moves rejections
    # that left the scoring window to the audit area; aggregates and the validators' DuckDB file
    # are replaced whole (the DuckDB file as a multipart upload).
    b.objects(
        "WriteCurated",
        ["s3:PutObject"],
        data,
        f"{CURATED_ROOT}*",
        f"{AUDIT_ROOT}*",
        f"{AGGREGATES_PREFIX}*",
        VIEWS_FILE_KEY,
    )
    b.objects("RemoveReplacedCurated", ["s3:DeleteObject"], data, f"{CURATED_ROOT}*")
    b.objects("AbortViewsUpload", ["s3:AbortMultipartUpload"], data, VIEWS_FILE_KEY)
    _commits(b)  # the training asset commits and deploy_job moves the pin from the run worker
    b.kms(write=True)
    if settings.upload_events_queue:
        b.allow(
            "UploadEvents",
            ["sqs:DeleteMessage", "sqs:ReceiveMessage"],
            [_queue_arn(settings.upload_events_queue, b.partition, settings.region)],
        )


def _admin(b: _Builder, settings: Settings) -> None:
    arns = [b.bucket_arn(bucket) for bucket in b.stores.buckets()]
    b.allow(
        "ConfigureBuckets",
        [
            "s3:GetBucketCORS",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketVersioning",
            "s3:GetEncryptionConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:PutBucketCORS",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketVersioning",
            "s3:PutEncryptionConfiguration",
            "s3:PutLifecycleConfiguration",
        ],
        arns,
    )
    # Restores copy noncurrent versions back (GetObjectVersion); permanent deletion of versions
    # (DeleteObjectVersion) is left to lifecycle, so versioning stays an undo.
    b.allow(
        "ManageObjects",
        [
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:PutObject",
        ],
        [f"{arn}/*" for arn in arns],
    )
    b.kms(write=True)


def _replica(stores: EnvironmentStores) -> StoreLocation:
    if stores.replica is None:
        raise InfraError(f"environment {stores.env!r} has no replica_store, so it has no replication role")
    return stores.replica


def _queue_arn(url: str, part: str, region: str) -> str:
    """``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` (or an emulator's URL) as an ARN."""
    path = [p for p in urlsplit(url).path.split("/") if p]
    if len(path) != 2 or not _ACCOUNT.match(path[0]):
        raise InfraError(
            f"upload_events_queue {url!r}: expected a queue URL ending in /ACCOUNT_ID/QUEUE_NAME"
        )
    return f"arn:{part}:sqs:{region}:{path[0]}:{path[1]}"


def _execution(b: _Builder, settings: Settings) -> None:
    """Only the injected secrets (added by :meth:`_Builder.secrets`); it never touches a bucket."""


_ROLE_BUILDERS = {
    "training": _training,
    "inference": _inference,
    "gc": _gc,
    "replication": _replication,
    "gateway": _gateway,
    "pipeline": _pipeline,
    "admin": _admin,
    "execution": _execution,
}
