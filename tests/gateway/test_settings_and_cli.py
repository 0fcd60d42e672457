"""Configuration layering, clear errors, and ``sn46 gateway`` serving over real HTTP."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import traceback

import httpx
import pytest

from sn46_pipelines.cli.gateway import register
from sn46_pipelines.config import ConfigError
from sn46_pipelines.gateway.settings import GATEWAY_VARIABLES, load_gateway_settings
from tests.gateway.helpers import gateway_process, miner_request
from tests.support.paths import REPO

from .conftest import free_port


def test_deployment_guide_variables_override_the_environment_file(tmp_path):
    settings = load_gateway_settings(
        "prod",
        {
            "S3_BUCKET": "my-sn46-bucket",
            "S3_REGION": "us-west-2",
            "NET_UID": "146",
            "BT_NETWORK": "test",
            "DAILY_LIMIT_PER_MINER": "7",
            "DAILY_LIMIT_PER_VALIDATOR": "70",
            "TOTAL_DAILY_LIMIT": "700",
            "REDIS_URL": "redis://cache:6379/0",
            "SN46_GATEWAY_CORS_ORIGINS": "https://a.example, https://b.example/",
        },
    )
    assert settings.data_store == "s3://my-sn46-bucket" and settings.bucket == "my-sn46-bucket"
    assert (settings.region, settings.netuid, settings.network) == ("us-west-2", 146, "test")
    assert (settings.per_miner_limit, settings.per_validator_limit, settings.total_limit) == (7, 70, 700)
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_environment_defaults():
    settings = load_gateway_settings("prod", {})
    assert settings.bucket == "4000-resilabs-prod-bittensor-sn46-datacollection"
    limits = (settings.per_miner_limit, settings.per_validator_limit, settings.total_limit)
    assert limits == (50, 20000, 500000)
    assert (settings.max_age_s, settings.max_skew_s) == (300, 60)
    assert (settings.upload_expiry_s, settings.url_expiry_s) == (86_400, 86_400)
    assert (settings.upload_min_bytes, settings.upload_max_bytes) == (1, 5 * 1024**3)
    assert settings.redis_url is None and settings.cors_origins == ()


def _documented(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_documented_defaults_are_the_codes():
    """docs/gateway.md's configuration table gives each SN46_GATEWAY_* default as the code has it."""
    rows = [
        line
        for line in (REPO / "docs" / "gateway.md").read_text().splitlines()
        if line.startswith(("| `SN46_GATEWAY_", "| `SN46_METAGRAPH_"))
    ]
    documented: dict[str, str] = {}
    for row in rows:
        names_cell, default_cell = (cell.strip() for cell in row.strip("|").split("|")[:2])
        names = re.findall(r"`(SN46_[A-Z0-9_]+)`", names_cell)
        defaults = default_cell.split(", ") if len(names) > 1 else [default_cell]
        documented.update(zip(names, defaults, strict=True))
    assert set(documented) == set(GATEWAY_VARIABLES)
    for var, (_, _, default) in GATEWAY_VARIABLES.items():
        shown = documented[var]
        if default in (None, ()):  # computed or off: the table says what happens instead
            assert shown.startswith(("unset", "none", "`$")), (var, shown)
        else:
            assert shown.split(" ", 1)[0] == _documented(default), (var, shown, default)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "needs an S3 data store"),  # local: a folder store cannot presign
        ({"S3_BUCKET": "Bad_Bucket"}, "S3_BUCKET"),
        ({"S3_BUCKET": "one-bucket", "SN46_DATA_STORE": "s3://other-bucket"}, "different buckets"),
        ({"S3_BUCKET": "one-bucket", "DAILY_LIMIT_PER_MINER": "0"}, "DAILY_LIMIT_PER_MINER"),
        ({"S3_BUCKET": "one-bucket", "SN46_GATEWAY_CORS_ORIGINS": "*"}, "not allowed"),
        ({"S3_BUCKET": "one-bucket", "SN46_GATEWAY_HOTKEY": "nope"}, "SN46_GATEWAY_HOTKEY"),
        ({"S3_BUCKET": "one-bucket", "NET_UID": "forty-six"}, "NET_UID"),
        ({"S3_BUCKET": "one-bucket", "SN46_GATEWAY_VALIDATOR_STAKE": "dividends"}, "VALIDATOR_STAKE"),
        (
            {"S3_BUCKET": "one-bucket", "SN46_GATEWAY_VALIDATOR_PERMIT": "maybe"},
            "SN46_GATEWAY_VALIDATOR_PERMIT",
        ),
        ({"S3_BUCKET": "one-bucket", "SN46_GATEWAY_UPLOAD_MAX_BYTES": str(6 * 1024**3)}, "UPLOAD_MAX_BYTES"),
        ({"S3_BUCKET": "one-bucket", "SN46_GATEWAY_URL_EXPIRY_S": "604801"}, "SN46_GATEWAY_URL_EXPIRY_S"),
    ],
)
def test_bad_configuration_names_the_variable(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_gateway_settings("local", environ)


def test_cli_registers_the_gateway_subcommand():
    parser = argparse.ArgumentParser(prog="sn46")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gateway", "--host", "0.0.0.0", "--port", "9000", "--workers", "3"])
    assert (args.host, args.port, args.workers) == ("0.0.0.0", 9000, 3)
    assert callable(args.handler)


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, sn46_pipelines.cli.gateway;"
        "print(sorted({'fastapi', 'uvicorn', 'bittensor', 'boto3'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_sn46_gateway_serves_with_two_workers(gateway_env):
    """The real command, two uvicorn workers sharing Redis: the app answers and a replay is refused."""
    port = free_port()
    with gateway_process(port, {**gateway_env, "SN46_ENV": "local"}) as proc:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/healthcheck", timeout=5).json()
                if health["metagraph"]["loaded"]:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-2000:]
            time.sleep(0.2)
        assert health["status"] == "ok", health
        body = miner_request()
        # Fresh connections, so the workers take turns: every retry gets the first answer, one charge.
        answers = [httpx.post(f"{url}/get-folder-access", json=body, timeout=10) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert len({a.content for a in answers}) == 1
        assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None] + ["true"] * 3
        changed = httpx.post(f"{url}/get-folder-access", json={**body, "job_id": "other"}, timeout=10)
        assert changed.status_code == 401
        assert httpx.get(f"{url}/rate-limits").json()["total_used_today"] == 1


def test_cli_refuses_a_folder_store_with_one_line(tmp_path):
    """``python -m sn46_pipelines.gateway`` goes through the dispatcher's error handling: exit 2, one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "S3_"))}
    env.update(SN46_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.gateway"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("sn46: error: the gateway needs an S3 data store")
    assert out.stderr.count("\n") == 1


def test_redis_url_must_be_a_redis_url():
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_gateway_settings("local", {"S3_BUCKET": "one-bucket", "REDIS_URL": "localhost:6379"})


#: Stands for the Redis password inside REDIS_URL; no error or repr may show it.
REDIS_PASSWORD = "planted-redis-password"


def test_a_bad_redis_url_is_named_never_repeated():
    """A malformed REDIS_URL still holds the password: the error names the variable and the problem only."""
    environ = {"S3_BUCKET": "one-bucket", "REDIS_URL": f"redis:/:{REDIS_PASSWORD}@cache:6379/0"}
    with pytest.raises(ConfigError) as info:
        load_gateway_settings("local", environ)
    assert str(info.value) == (
        "REDIS_URL (value hidden): expected redis://host:port/db, rediss://... or unix:///path"
    )
    assert REDIS_PASSWORD not in "".join(traceback.format_exception(info.value))


def test_settings_repr_hides_the_redis_url():
    url = f"rediss://:{REDIS_PASSWORD}@cache:6379/0"
    settings = load_gateway_settings("local", {"S3_BUCKET": "one-bucket", "REDIS_URL": url})
    assert settings.redis_url == url  # still there for the ledger
    assert REDIS_PASSWORD not in repr(settings) and "redis_url" not in repr(settings)
    assert "data_store='s3://one-bucket'" in repr(settings)
