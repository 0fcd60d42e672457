"""Each role's real code path runs under its policy, through moto behind an IAM gate (infra_gate.py).

The gate answers 403 for anything the policy does not allow, as S3 would, so
a missing permission fails the code path itself; and each test checks that
the role used every statement its policy grants (nothing granted "just in
case") and that what the role must never do is refused.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from sn46_pipelines.infra import build_policies, evaluate
from sn46_pipelines.modelstore import InferenceClient, ModelStore, collect_garbage, set_pin, verify
from sn46_pipelines.objectstore import StoreUnavailableError, open_store

#: Grants a scenario cannot reach without fault injection or thousands of versions: (Sid, key pattern).
RARE = {
    (
        "AbortBlobUploads",
        "models/blobs/sha256/*",
    ): "boto3 aborts a multipart blob upload that failed half-way",
    ("AbortReplicaBlobUploads", "models/blobs/sha256/*"): "the same, for blobs copied to the replica",
    ("AbortViewsUpload", "views/sn46.duckdb"): "the same, for the validators' DuckDB file",
    (
        "RemoveIntentsAndPins",
        "models/pins/*",
    ): "set_pin deletes a pin only when GC took its version meanwhile",
    ("DeleteGarbage", "models/collected/*"): "GC unmarks a version only when a pin moved to it while GC ran",
    ("CommitVersions", "models/segments/*"): "a segment is sealed after every 1,000th version",
}


@contextlib.contextmanager
def acting_as(gate, env, role: str) -> Iterator[str]:
    """Environment variables of a process running as ``role``: its own key, the gate as endpoint."""
    key = f"AKIA{role.upper()}{uuid.uuid4().hex[:8].upper()}"
    gate.policies[key] = build_policies(env.settings, roles=(role,)).policies[role]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", key)
        mp.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
        mp.setenv("AWS_ENDPOINT_URL", gate.url)
        yield key


def model_store(env) -> ModelStore:
    settings = env.settings
    return ModelStore.open(settings.model_store, endpoint_url=settings.endpoint_url, region=settings.region)


def assert_least_privilege(gate, key: str, *, covered_elsewhere: tuple[str, ...] = ()) -> None:
    """Nothing was denied, and every action on every resource and prefix the policy grants was used.

    Each grant is cut down to one action, one resource and one ``s3:prefix``
    pattern and re-evaluated against every request the role made; a grant no
    request needed fails the test unless :data:`RARE` explains it.
    """
    assert not gate.denied(key), [(c.operation, [r.resource for r, _ in c.checks]) for c in gate.denied(key)]
    requests = [r for call in gate.of(key) for r, d in call.checks if d.allowed]
    unused = []
    for statement in gate.policies[key]["Statement"]:
        if statement["Sid"] in covered_elsewhere or not statement["Action"][0].startswith("s3:"):
            continue
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [None])
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                for prefix in prefixes:
                    grant = {**statement, "Action": [action], "Resource": [resource]}
                    if prefix is not None:
                        grant["Condition"] = {"StringLike": {"s3:prefix": [prefix]}}
                    pattern = prefix if prefix is not None else resource.split("/", 1)[-1]
                    if (statement["Sid"], pattern) in RARE:
                        continue
                    if not any(evaluate({"Statement": [grant]}, r).allowed for r in requests):
                        unused.append(f"{statement['Sid']}: {action} {resource} {prefix or ''}".rstrip())
    assert not unused, "granted but never needed:\n" + "\n".join(unused)


def checkpoint(folder: Path, seed: int, *, big: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(f"weights-{seed}".encode() * 100)
    (folder / "metrics.json").write_text(f'{{"seed": {seed}}}')
    if big:  # above the 8 MiB multipart threshold: CreateMultipartUpload, UploadPart, Complete
        (folder / "optimizer.bin").write_bytes(bytes([seed]) * (9 * 1024 * 1024))
    return folder


def seed_uploads(env) -> list[str]:
    """Two demo miners' uploads, written with the test's own credentials (as miners would, by POST)."""
    from sn46_pipelines.demo.seed import seed_demo

    seeded = seed_demo(open_store(env.settings.data_store), miners=2, validators=1)
    return [f.key for m in seeded.miners for f in m.files]


def publish_listings(store) -> None:
    """What the pipeline does before training: find the uploads, ingest them, publish the aggregates."""
    from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
    from sn46_pipelines.listings.discovery import ScanCursor, scan_uploads
    from sn46_pipelines.listings.ingest import ingest_hotkey, read_manifest

    scan = scan_uploads(store, ScanCursor(), lambda hotkey: read_manifest(store, hotkey))
    assert len(scan.new_files) == 2
    for hotkey in scan.new_files:
        assert ingest_hotkey(store, hotkey).listings_rows > 0
    write_aggregates(store, aggregate_store(store))


def test_training_reads_listings_commits_pins_and_verifies(env, gate, tmp_path):
    from sn46_pipelines.listings.views import training_listings

    seed_uploads(env)
    publish_listings(open_store(env.settings.data_store))  # the test's own credentials
    with acting_as(gate, env, "training") as key:
        assert training_listings(open_store(env.settings.data_store)).num_rows > 0
        store = model_store(env)
        store.commit(checkpoint(tmp_path / "a", 1, big=True), message="first")
        record = store.commit(checkpoint(tmp_path / "b", 2), message="second")
        set_pin(store, "test", record.counter)
        assert verify(store).valid
        operations = {c.operation for c in gate.of(key)}
        assert {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject"} <= operations
        assert_least_privilege(gate, key)
        with pytest.raises(StoreUnavailableError, match="access denied"):
            model_store(env).objects.delete(f"records/v{record.counter:010d}.json")
        with pytest.raises(StoreUnavailableError, match="access denied"):
            open_store(env.settings.data_store).get("aggregates/rejected/miner_scores.parquet")


def test_inference_loads_the_pinned_version_and_cannot_write(env, gate, tmp_path):
    store = model_store(env)  # the test's own credentials: set up as training would
    record = store.commit(checkpoint(tmp_path / "a", 3))
    set_pin(store, "test", record.counter)
    with acting_as(gate, env, "inference") as key:
        client = InferenceClient(
            model_store(env),
            "test",
            loader=lambda c: c.path("model.pt").read_bytes(),
            cache_dir=tmp_path / "cache",
        )
        assert client.poll(), client.health().last_error
        assert client.model == b"weights-3" * 100
        assert verify(model_store(env)).valid
        assert_least_privilege(gate, key)
        with pytest.raises(StoreUnavailableError, match="access denied"):
            model_store(env).objects.put("pins/test.json", b"{}")
        with pytest.raises(StoreUnavailableError, match="access denied"):
            open_store(env.settings.data_store).get("curated/hotkey=x/manifest.json")


def test_gc_collects_old_versions(env, gate, tmp_path):
    store = model_store(env)
    for seed in range(3):
        store.commit(checkpoint(tmp_path / str(seed), seed))
    store.objects.put("inflight/stale-intent.json", b'{"blobs": []}')  # a crashed commit's intent
    # A crashed commit's multipart blob upload (moto dates every upload 2010: past any grace period).
    s3, blob = env.s3(), f"models/blobs/sha256/ab/{'ab' * 32}"
    upload = s3.create_multipart_upload(Bucket=env.data_bucket, Key=blob)["UploadId"]
    s3.upload_part(Bucket=env.data_bucket, Key=blob, UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    with acting_as(gate, env, "gc") as key:
        result = collect_garbage(model_store(env), keep_versions=1, keep_min_versions=1, intent_ttl=0)
        assert result.collected == [0, 1] and result.blobs_deleted > 0 and result.stale_intents_deleted == 1
        assert (result.leftovers, result.leftover_bytes, result.leftovers_error) == (1, 1024, None)
        assert not s3.list_multipart_uploads(Bucket=env.data_bucket).get("Uploads")
        assert_least_privilege(gate, key)
        with pytest.raises(StoreUnavailableError, match="access denied"):
            model_store(env).objects.delete("records/v0000000000.json")


def test_replication_repairs_the_replica(env, gate, tmp_path):
    from sn46_pipelines.modelstore.replication import check_replication

    store = model_store(env)
    for seed in (5, 6):
        store.commit(checkpoint(tmp_path / str(seed), seed))
    collect_garbage(store, keep_versions=1)  # so there is a "collected" marker to copy
    with acting_as(gate, env, "replication") as key:
        settings = env.settings
        replica = ModelStore.open(
            settings.replica_store, endpoint_url=settings.endpoint_url, region=settings.region
        )
        check_replication(model_store(env), replica, repair=True)
        assert check_replication(model_store(env), replica).in_sync
        assert_least_privilege(gate, key)
        with pytest.raises(StoreUnavailableError, match="access denied"):
            model_store(env).objects.put("records/v0000000009.json", b"{}")


def test_the_gateways_presigned_requests(env, gate):
    from sn46_pipelines.gateway.presign import Presigner

    with acting_as(gate, env, "gateway") as key:
        store = open_store(env.settings.data_store)
        store.check()  # the health check: HeadBucket
        presigner = Presigner(store.client, store.bucket, store.prefix, min_bytes=1, max_bytes=1 << 20)
        post = presigner.upload_post("5F3xyz", "zillow_zip_78701", 600)
        name = "data_20250620_143052_150.parquet"
        answer = httpx.post(post["url"], data=post["fields"], files={"file": (name, b"PAR1 rows PAR1")})
        assert answer.status_code in (200, 204), answer.text
        uploaded = f"data/hotkey=5F3xyz/job_id=zillow_zip_78701/{name}"
        assert httpx.get(presigner.list_url("data/hotkey=", 600, delimiter="/")).status_code == 200
        listing = httpx.get(presigner.list_url("data/hotkey=5F3xyz/", 600))
        assert listing.status_code == 200 and uploaded in unquote(listing.text)  # keys come URL-encoded
        download = httpx.get(presigner.download_url(uploaded, 600))
        assert download.status_code == 200 and download.content == b"PAR1 rows PAR1"
        assert_least_privilege(gate, key)
        # Signed with the gateway's key, a URL outside the miners' folders is worthless.
        assert httpx.get(presigner.download_url("models/pins/test.json", 600)).status_code == 403
        assert httpx.get(presigner.list_url("curated/", 600)).status_code == 403


def test_the_pipeline_discovers_ingests_aggregates_publishes_and_commits(env, gate, tmp_path):
    from sn46_pipelines.listings import parse_upload_key, upload_key
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.listings.layout import VIEWS_FILE_KEY, audit_prefix
    from sn46_pipelines.listings.views import write_views_file

    uploads = seed_uploads(env)
    with acting_as(gate, env, "pipeline") as key:
        store = open_store(env.settings.data_store)
        publish_listings(store)
        write_views_file(store, tmp_path / "sn46.duckdb")
        store.upload(VIEWS_FILE_KEY, tmp_path / "sn46.duckdb")
        model_store(env).commit(checkpoint(tmp_path / "model", 7))  # the training asset's commit
        set_pin(model_store(env), "test", "head")  # deploy_job
        # A miner uploads again: the next ingest replaces that hotkey's curated files.
        first = parse_upload_key(uploads[0])
        again = upload_key(first.hotkey, first.job_id, first.timestamp + timedelta(seconds=1), first.rows)
        env.s3().copy_object(
            Bucket=env.data_bucket, Key=again, CopySource={"Bucket": env.data_bucket, "Key": uploads[0]}
        )
        assert ingest_hotkey(store, first.hotkey).new_files
        # A month on, the duplicating miner's first rejections leave the scoring window for audit/.
        last = parse_upload_key(uploads[-1])
        later = upload_key(last.hotkey, last.job_id, last.timestamp + timedelta(days=31), last.rows)
        env.s3().copy_object(
            Bucket=env.data_bucket, Key=later, CopySource={"Bucket": env.data_bucket, "Key": uploads[-1]}
        )
        assert ingest_hotkey(store, last.hotkey, now=datetime.now(UTC) + timedelta(days=31)).new_files
        assert_least_privilege(gate, key)
        with pytest.raises(StoreUnavailableError, match="access denied"):
            store.delete(uploads[0])  # uploads are the miners' evidence
        with pytest.raises(StoreUnavailableError, match="access denied"):
            model_store(env).objects.delete("blobs/sha256/00/" + "0" * 64)

    audit = env.s3().list_objects_v2(Bucket=env.data_bucket, Prefix=audit_prefix(last.hotkey))
    assert audit.get("KeyCount"), "the expired rejections were moved to the audit area"


def test_admin_applies_the_bucket_plan_but_cannot_delete_buckets(env, gate):
    import boto3
    from botocore.exceptions import ClientError

    from sn46_pipelines.infra import plan_environment, reconcile

    with acting_as(gate, env, "admin") as key:
        plan = plan_environment(env.settings)
        assert all(r.confirmed for r in reconcile(plan, apply=True))
        assert not any(r.changed for r in reconcile(plan, apply=True))
        assert not gate.denied(key)
        used = {r.action for call in gate.of(key) for r, _ in call.checks}
        configure = next(s for s in gate.policies[key]["Statement"] if s["Sid"] == "ConfigureBuckets")
        assert set(configure["Action"]) - used == {
            "s3:ListBucketVersions"
        }  # listed only to restore a version
        # A fresh session reads the admin key; boto3.client() would reuse the default session's.
        as_admin = boto3.session.Session().client("s3", endpoint_url=gate.url, region_name="us-east-2")
        with pytest.raises(ClientError, match="AccessDenied"):
            as_admin.delete_bucket(Bucket=env.replica_bucket)
    assert env.s3().head_bucket(Bucket=env.replica_bucket)
