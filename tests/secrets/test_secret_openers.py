"""Every place that opens a store from a URL signs with the environment's object-store secret.

The gateway (its store client and the POST policies it presigns), the ``sn46``
commands that take ``--store``/``--replica`` and the upload sensor. As in
``test_secret_store_credentials``, moto checks signatures and IAM permissions
(``iam_enforced``): the process's own identity may only read the secret, the
secret's keys may only use the bucket, so a write that lands proves which keys
signed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from sn46_pipelines import cli
from sn46_pipelines.config import AutomationSettings, load_settings
from sn46_pipelines.defs.listings import upload_sensor
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.gateway.service import build_gateway
from sn46_pipelines.gateway.settings import load_gateway_settings
from sn46_pipelines.modelstore import ModelStore
from tests.secrets.secrets_helpers import REGION

miner_upload_sensor = upload_sensor(AutomationSettings())


@pytest.fixture
def store_user(store_secret, environment):
    """The environment's object-store secret holds a bucket user's keys; the process may only read secrets."""
    environment(source="aws-secrets-manager", object_store=store_secret.name)
    return store_secret.store_user


def post_signature(secret_key: str, day: str, policy: str) -> str:
    """SigV4's signature of a POST policy, derived here from the key alone (not the gateway's signer)."""
    key = f"AWS4{secret_key}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()


def test_the_gateway_presigns_and_checks_its_store_with_the_secrets_keys(
    store_user, iam_enforced, tmp_path, monkeypatch
):
    """Its store client signs the bucket checks; its POST policies and URLs carry the secret's key."""
    monkeypatch.setenv("SN46_GATEWAY_STATE_DB", str(tmp_path / "state.sqlite3"))
    monkeypatch.setenv("SN46_METAGRAPH_FILE", str(tmp_path / "metagraph.json"))  # never read here
    iam_enforced()
    gateway = build_gateway(load_gateway_settings())

    assert asyncio.run(gateway.s3_health())[0]  # the healthcheck's HeadBucket: only the secret's keys may
    fields = gateway.presigner.upload_post("5HotkeyOfAMiner", "job-1", 3600)["fields"]
    key_id, day, *_ = fields["x-amz-credential"].split("/")
    assert key_id == store_user.key_id
    assert fields["x-amz-signature"] == post_signature(store_user.secret, day, fields["policy"])
    assert "X-Amz-Credential=" + store_user.key_id in gateway.presigner.signer.list_url({}, 600)


def sn46(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_store_commands_sign_store_and_replica_urls_with_the_secrets_keys(
    store_user, iam_enforced, s3_bucket, tmp_path
):
    """``--store`` and ``--replica`` name other prefixes than the environment's, and still get its keys."""
    (tmp_path / "model.pt").write_bytes(b"weights")
    primary, replica = f"s3://{s3_bucket}/elsewhere", f"s3://{s3_bucket}/elsewhere-replica"
    iam_enforced()
    out = sn46("store", "--store", primary, "commit", str(tmp_path / "model.pt"), "-m", "via --store")
    assert out.returncode == 0, out.stderr
    out = sn46("store", "--store", primary, "replication-check", "--replica", replica, "--repair", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["in_sync"] is True
    # Read back through the environment, still under enforcement: the version landed in both prefixes.
    settings = load_settings()
    for url in (primary, replica):
        assert ModelStore(settings.open_store(url)).get("head").message == "via --store"


def test_demo_seed_and_query_sign_a_store_url_with_the_secrets_keys(
    store_user, iam_enforced, s3_bucket, capsys
):
    """In process through ``sn46``'s entry point: the seed writes and the query reads, under enforcement."""
    url = f"s3://{s3_bucket}/demo"
    iam_enforced()
    assert cli.main(["demo", "seed", "--store", url, "--miners", "2", "--validators", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"seeded {url}: 2 miners, 1 validators")
    # Nothing is curated yet, so the query stops at the first aggregate. To get there it listed
    # curated/ with the store's client and asked S3 for the aggregate through pyarrow: other keys
    # get a 403 there.
    assert cli.main(["query", "--store", url, "select count(*) from listings"]) == 2
    assert capsys.readouterr().err == (
        f"sn46: error: {url}: no aggregates/miner_scores.parquet; "
        "materialize listing_aggregates first (sn46 pipeline run)\n"
    )


@pytest.mark.parametrize(
    ("unreachable", "reason"),
    [
        (False, "data store cannot be opened: secret '{id}' not found in AWS Secrets Manager (us-east-2)"),
        (True, "data store unavailable: s3://{bucket}: secret '{id}': cannot reach AWS Secrets Manager"),
    ],
    ids=["missing secret", "secrets manager out of reach"],
)
def test_the_upload_sensor_skips_a_tick_it_cannot_open_the_store_for(
    unreachable, reason, environment, secret_prefix, s3_bucket, monkeypatch
):
    """A missing secret or Secrets Manager out of reach skips the tick, naming the secret; nothing raises."""
    secret_id = secret_prefix + "object-store"  # never created
    environment(source="aws-secrets-manager", object_store=secret_id)
    if unreachable:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")  # nothing listens there
    context = dg.build_sensor_context(cursor="unchanged", resources={"data_store": DataStoreResource()})
    result = miner_upload_sensor(context)
    assert result.skip_reason.skip_message.startswith(reason.format(id=secret_id, bucket=s3_bucket))
    assert not result.run_requests and result.cursor is None  # the tick's cursor stays as it was
