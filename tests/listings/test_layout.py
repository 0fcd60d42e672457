"""The data store's layout: keys built from it parse back, and the gateway's grants are its miner folders."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from datetime import UTC, datetime

import boto3
import pytest

from sn46_pipelines.listings import layout
from sn46_pipelines.listings.keys import (
    JSON,
    PARQUET,
    epoch_job_id,
    epoch_upload_key,
    parse_upload_key,
    upload_key,
)
from sn46_pipelines.listings.layout import (
    EPOCH_FOLDER_STRUCTURE,
    FOLDER_STRUCTURE,
    MINERS_PREFIX,
    UPLOAD_PREFIX,
    audit_prefix,
    curated_prefix,
    epoch_folder,
    job_folder,
    manifest_key,
    miner_folder,
)

HK = "5DV9VhyKohKFTkV9CFc5ywqLuaFPkuzKezCs6ubpVfTMVy73"
JOB = "zillow_premium_zip_78701_sold"
EPOCH = "2026-12-03T08-00-00"
AT = datetime(2026, 12, 3, 9, 15, 2, tzinfo=UTC)


def test_a_job_key_built_from_the_layout_parses_back() -> None:
    key = job_folder(HK, JOB) + "data_20261203_091502_150.parquet"
    parsed = parse_upload_key(key)
    assert (parsed.hotkey, parsed.job_id, parsed.rows, parsed.format) == (HK, JOB, 150, PARQUET)
    assert parsed.timestamp == AT
    assert upload_key(HK, JOB, AT, 150) == key
    assert key.startswith(miner_folder(HK)) and miner_folder(HK).startswith(MINERS_PREFIX)
    assert layout.JOB_UPLOAD_KEY.fullmatch(key)


@pytest.mark.parametrize("doubled", [False, True])
def test_an_epoch_key_built_from_the_layout_parses_back(doubled: bool) -> None:
    key = epoch_folder(HK, EPOCH, "78701", doubled=doubled) + "data_20261203_091502.json"
    parsed = parse_upload_key(key)
    assert (parsed.hotkey, parsed.epoch_id, parsed.job_zip, parsed.format) == (HK, EPOCH, "78701", JSON)
    assert parsed.job_id == epoch_job_id(EPOCH, "78701")
    assert parsed.timestamp == AT
    assert epoch_upload_key(HK, EPOCH, "78701", AT, doubled=doubled) == key
    assert key.startswith(miner_folder(HK) * (2 if doubled else 1))
    assert layout.EPOCH_UPLOAD_KEY.fullmatch(key)


def test_the_templates_are_the_folder_functions() -> None:
    assert FOLDER_STRUCTURE == "data/hotkey={hotkey_id}/job_id={job_id}/"
    assert FOLDER_STRUCTURE.format(hotkey_id=HK, job_id=JOB) == job_folder(HK, JOB)
    assert EPOCH_FOLDER_STRUCTURE.format(hotkey=HK, epoch_id=EPOCH, zipcode="78701") == epoch_folder(
        HK, EPOCH, "78701"
    )
    assert miner_folder(HK) == f"data/hotkey={HK}/" and miner_folder(HK).startswith(UPLOAD_PREFIX)
    assert miner_folder("*") == "data/hotkey=*/"


def test_curated_and_audit_keys_are_per_hotkey_folders() -> None:
    assert curated_prefix(HK) == f"curated/hotkey={HK}/"
    assert manifest_key(HK) == f"curated/hotkey={HK}/manifest.json"
    assert audit_prefix(HK) == f"audit/hotkey={HK}/"
    assert layout.aggregate_key("miner_scores") == "aggregates/miner_scores.parquet"
    assert layout.aggregate_key("miner_scores", layout.REJECTED_AGGREGATES_PREFIX).startswith(
        layout.AGGREGATES_PREFIX
    )


def test_the_gateways_examples_follow_the_layout() -> None:
    from sn46_pipelines.gateway.presign import EXAMPLE_PATHS

    for path in EXAMPLE_PATHS:
        parsed = parse_upload_key(path)
        assert path.startswith(miner_folder(parsed.hotkey))


@pytest.mark.parametrize("job_id", [None, "default_0"])
def test_a_miner_folder_is_the_gateways_policy_prefix(job_id: str | None) -> None:
    from sn46_pipelines.gateway.presign import Presigner

    client = boto3.client(
        "s3",
        region_name="us-east-2",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
        endpoint_url="http://127.0.0.1:9",
    )
    p = Presigner(client, "bucket", "env/", min_bytes=1, max_bytes=10)
    allowed = "env/" + (job_folder(HK, job_id) if job_id else miner_folder(HK))
    assert p.upload_prefix(HK, job_id) == allowed
    fields = p.upload_post(HK, job_id, 60)["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["starts-with", "$key", allowed] in policy["conditions"]


def test_the_layout_module_stands_alone() -> None:
    """Loaded outside its package it still works: it imports nothing of the project."""
    spec = importlib.util.spec_from_file_location("standalone_layout", layout.__file__)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.miner_folder(HK) == miner_folder(HK)
    assert "standalone_layout" not in sys.modules
