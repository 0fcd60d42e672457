"""``sn46 config`` shows where each secret comes from and checks it; no ``sn46`` output ever holds a value.

Every command runs as a real ``sn46`` process against moto's Secrets Manager and S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: Values planted in the secrets and in the variables; no output may contain one.
KEY = "wJalrXUtnFEMI-planted-store-key"
REDIS_PASSWORD = "planted-redis-password"
PG_PASSWORD = "planted-pg-password"


def sn46(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def assert_no_value(out: subprocess.CompletedProcess[str]) -> None:
    for value in (KEY, REDIS_PASSWORD, PG_PASSWORD):
        assert value not in out.stdout + out.stderr


@pytest.fixture
def ids(secretsmanager, secret_prefix, environment, monkeypatch):
    """The three secrets in Secrets Manager, the environment naming them, the platform's variables set."""
    ids = {
        field: secret_prefix + name
        for field, name in (
            ("object_store", "object-store"),
            ("redis", "redis"),
            ("dagster_postgres", "dagster-postgres"),
        )
    }
    values = {
        "object_store": {"aws_access_key_id": "AKIASN46EXAMPLE", "aws_secret_access_key": KEY},
        "redis": {"url": f"rediss://:{REDIS_PASSWORD}@cache:6379/0"},
        "dagster_postgres": {"password": PG_PASSWORD},
    }
    for field, secret_id in ids.items():
        secretsmanager.create_secret(Name=secret_id, SecretString=json.dumps(values[field]))
    environment(source="aws-secrets-manager", **ids)
    monkeypatch.setenv("REDIS_URL", values["redis"]["url"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PG_PASSWORD)
    return ids


def test_config_shows_where_each_secret_lives_and_checks_them(ids):
    out = sn46("config", "--check-secrets")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    sources = lines[lines.index("secret sources") + 1 : lines.index("secret checks")]
    assert sources == [
        f"  object-store      AWS Secrets Manager {ids['object_store']!r} (us-east-2), "
        "read by this process for the S3 client of every store",
        "  redis             variable REDIS_URL (set) for the gateway's quota ledger, "
        f"injected by the platform from AWS Secrets Manager {ids['redis']!r} (us-east-2), key 'url'",
        f"  dagster-postgres  variable DAGSTER_PG_PASSWORD (set) for Dagster's Postgres storage "
        "(deploy/dagster.prod.yaml), injected by the platform from "
        f"AWS Secrets Manager {ids['dagster_postgres']!r} (us-east-2), key 'password'",
    ]
    checks = lines[lines.index("secret checks") + 1 :]
    assert checks == [
        f"  object-store      ok: {ids['object_store']!r} has keys aws_access_key_id, aws_secret_access_key",
        f"  redis             ok: {ids['redis']!r} has keys url",
        f"  dagster-postgres  ok: {ids['dagster_postgres']!r} has keys password",
    ]
    assert_no_value(out)


def test_json_config_names_the_secrets_never_their_values(ids):
    out = sn46("config", "--json", "--check-secrets")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["secrets"] == {"source": "aws-secrets-manager", **ids}
    names = {"object-store", "redis", "dagster-postgres"}
    assert set(doc["secret_sources"]) == set(doc["secret_checks"]) == names
    assert all(check["ok"] for check in doc["secret_checks"].values())
    assert_no_value(out)


def test_a_failed_check_exits_2_and_names_each_problem(ids, secretsmanager):
    secretsmanager.delete_secret(SecretId=ids["redis"], ForceDeleteWithoutRecovery=True)
    malformed = json.dumps({"pass": PG_PASSWORD})
    secretsmanager.put_secret_value(SecretId=ids["dagster_postgres"], SecretString=malformed)
    out = sn46("config", "--check-secrets")
    assert out.returncode == 2
    assert out.stderr == "sn46: error: secret check failed for redis, dagster-postgres\n"
    assert f"  redis             FAILED: secret {ids['redis']!r} not found in AWS" in out.stdout
    assert f"FAILED: secret {ids['dagster_postgres']!r} has no key 'password'" in out.stdout
    assert_no_value(out)


def test_source_env_reads_nothing_and_shows_the_variables(ids, monkeypatch):
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "env")
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    out = sn46("config", "--check-secrets")
    assert out.returncode == 0, out.stderr
    assert "  object-store      variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (set)" in out.stdout
    assert "  redis             variable REDIS_URL (set)" in out.stdout
    assert (
        "  dagster-postgres  variable DAGSTER_PG_PASSWORD (not set: needed only where dagster.yaml uses "
        "Postgres)"
    ) in out.stdout
    assert out.stdout.count("not read: it comes from variables") == 3
    assert_no_value(out)


def test_a_store_command_with_a_missing_secret_prints_one_line(ids, secretsmanager):
    secretsmanager.delete_secret(SecretId=ids["object_store"], ForceDeleteWithoutRecovery=True)
    out = sn46("store", "head")
    assert out.returncode == 2
    assert out.stderr == (
        f"sn46 store: error: secret {ids['object_store']!r} not found in AWS Secrets Manager (us-east-2)\n"
    )


def test_the_gateway_with_a_missing_secret_stops_with_one_line_before_its_workers_start(ids, secretsmanager):
    secretsmanager.delete_secret(SecretId=ids["object_store"], ForceDeleteWithoutRecovery=True)
    out = sn46("gateway", "--port", "0", "--workers", "2")
    assert out.returncode == 2
    assert out.stderr == (
        f"sn46: error: secret {ids['object_store']!r} not found in AWS Secrets Manager (us-east-2)\n"
    )
