"""Production Dagster homes for the tests: ``deploy/dagster.prod.yaml`` on a new database, role and bucket."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import yaml

from tests.support.paths import REPO
from tests.support.postgres import PostgresServer

PROD_YAML = REPO / "deploy" / "dagster.prod.yaml"


@dataclass(frozen=True)
class ProdHome:
    """A ``DAGSTER_HOME`` holding the production ``dagster.yaml``, and the variables that configure it."""

    home: Path
    env: dict[str, str]
    database: str
    compute_logs_bucket: str


def make_prod_home(
    postgres: PostgresServer,
    moto_endpoint: str,
    folder: Path,
    run_monitoring: dict[str, int] | None = None,
) -> ProdHome:
    """A new database, role and bucket, and a home folder whose ``dagster.yaml`` is the production file.

    ``run_monitoring`` overrides fields of that block (and nothing else), for
    a test that must see a recovery the production timeouts would make wait
    for ten minutes.
    """
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    postgres.create_database(name, owner=name, password=password)
    bucket = f"sn46-dagster-logs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    if run_monitoring:
        instance = yaml.safe_load(PROD_YAML.read_text())
        instance["run_monitoring"].update(run_monitoring)
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance, sort_keys=False))
    else:
        shutil.copyfile(PROD_YAML, home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": name,
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_DB": name,
        "DAGSTER_COMPUTE_LOGS_BUCKET": bucket,
    }
    return ProdHome(home=home, env=env, database=name, compute_logs_bucket=bucket)
