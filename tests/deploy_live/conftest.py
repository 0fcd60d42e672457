"""Fixtures: the production topology on a fresh PostgreSQL database and moto's S3 server.

The production ``DAGSTER_HOME`` (``deploy/dagster.prod.yaml``, its own database,
role and compute-log bucket) comes from the PostgreSQL deployment tests'
helpers; this folder adds the three Dagster processes around it, with the data
and model stores in a bucket of their own.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy_postgres"))

from live import ProductionTopology
from prod_home_helpers import make_prod_home


@pytest.fixture
def production(postgres, moto_endpoint, tmp_path) -> Iterator[ProductionTopology]:
    """The three processes on the production instance, started and loaded; stopped with Ctrl-C afterwards.

    ``SN46_ENV`` stays ``local``, whose sensors tick every 5 s: the wiring and
    the instance are production's, the cadence a test can wait for.
    """
    prod = make_prod_home(postgres, moto_endpoint, tmp_path)
    bucket = f"sn46-live-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))},
        **prod.env,
        "SN46_HOME": str(tmp_path),
        "SN46_DATA_STORE": f"s3://{bucket}/data",
        "SN46_MODEL_STORE": f"s3://{bucket}/models",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    topology = ProductionTopology(tmp_path, env)
    try:
        topology.start_all()
        yield topology
    finally:
        topology.stop()
