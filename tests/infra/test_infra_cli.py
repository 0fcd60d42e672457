"""`sn46 infra bucket` and `sn46 infra iam` end to end, as subprocesses against moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from sn46_pipelines.cli.infra import BUCKET_SETTINGS, ROLE_NAMES
from sn46_pipelines.infra import ROLES, SETTINGS


def sn46(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def one_json(out: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(out.stdout)


def test_the_cli_names_match_the_library():
    assert BUCKET_SETTINGS == SETTINGS and tuple(ROLES) == ROLE_NAMES


def test_plan_then_diff_then_apply_then_apply_again(env):
    plan = sn46("infra", "bucket", "--env", "test", "--json")
    assert plan.returncode == 0, plan.stderr
    doc = one_json(plan)
    assert doc["mode"] == "plan" and [b["bucket"] for b in doc["buckets"]] == [
        env.data_bucket,
        env.replica_bucket,
    ]
    assert all("result" not in b for b in doc["buckets"])

    diff = sn46("infra", "bucket", "--env", "test", "--diff", "--json")
    assert diff.returncode == 1, diff.stderr  # something would change
    settings = one_json(diff)["buckets"][0]["result"]["settings"]
    assert {s["status"] for s in settings} == {"would change"}
    assert "Status" not in env.s3().get_bucket_versioning(Bucket=env.data_bucket)  # --diff wrote nothing

    applied = sn46("infra", "bucket", "--env", "test", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr
    results = [b["result"] for b in one_json(applied)["buckets"]]
    assert all(r["confirmed"] and r["changed"] for r in results)
    assert env.s3().get_bucket_versioning(Bucket=env.replica_bucket)["Status"] == "Enabled"

    again = sn46("infra", "bucket", "--env", "test", "--apply")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("[unchanged]") == 2 * len(SETTINGS)
    assert again.stdout.count("reads back as planned") == 2

    assert sn46("infra", "bucket", "--env", "test", "--diff").returncode == 0  # no drift


def test_cors_origins_from_the_command_line(env):
    out = sn46(
        "infra",
        "bucket",
        "--env",
        "test",
        "--apply",
        "--json",
        "--cors-origin",
        "https://upload.example.org",
        "--skip",
        "lifecycle",
    )
    assert out.returncode == 0, out.stderr
    (rule,) = env.s3().get_bucket_cors(Bucket=env.data_bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://upload.example.org"]
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):  # --skip lifecycle
        env.s3().get_bucket_lifecycle_configuration(Bucket=env.data_bucket)


def test_a_missing_bucket_exits_2_with_one_line(env, monkeypatch):
    monkeypatch.setenv("SN46_REPLICA_STORE", "s3://sn46-no-such-bucket-cli/models")
    out = sn46("infra", "bucket", "--env", "test", "--apply", "--json")
    assert out.returncode == 2
    assert "s3://sn46-no-such-bucket-cli: bucket does not exist" in one_json(out)["error"]
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("sn46 infra: error: ")


def test_no_credentials_is_answered_at_once_even_where_instance_metadata_never_answers(monkeypatch):
    """Off AWS, botocore's last credential source is the instance metadata service: here one that
    accepts connections and never replies (a firewall that drops packets looks the same). The
    user's mistake is still answered within seconds, naming the credentials, not a missing bucket."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}/"
        )
        out = subprocess.run(
            [sys.executable, "-m", "sn46_pipelines.cli", "infra", "bucket", "--env", "prod", "--diff"],
            capture_output=True,
            text=True,
            timeout=30,  # botocore's metadata probes are bounded (1 s, 1 attempt each by default)
            env=dict(os.environ),
        )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "no AWS credentials found" in line and "your own AWS credentials" in line
    assert "create it first" not in line


def test_a_rule_reaching_the_model_store_exits_2_and_writes_nothing(env):
    s3 = env.s3()
    s3.put_bucket_lifecycle_configuration(
        Bucket=env.data_bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "purge",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "models/"},
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )
    out = sn46("infra", "bucket", "--env", "test", "--apply")
    assert out.returncode == 2
    assert "'purge'" in out.stderr and "would expire its objects" in out.stderr
    assert "Status" not in s3.get_bucket_versioning(Bucket=env.data_bucket)


def test_local_environment_exits_2():
    out = sn46("infra", "bucket", "--env", "local")
    assert out.returncode == 2 and "need S3 stores" in out.stderr


def test_iam_json_document_and_check(env, monkeypatch):
    monkeypatch.setenv("SN46_SECRETS_SOURCE", "aws-secrets-manager")
    out = sn46("infra", "iam", "--env", "test", "--account-id", "123456789012", "--json")
    assert out.returncode == 0, out.stderr
    roles = one_json(out)["roles"]
    assert set(roles) == set(ROLES) and all(r["description"] for r in roles.values())

    document = sn46(
        "infra", "iam", "--env", "test", "--role", "inference", "--document", "--account-id", "123456789012"
    )
    assert one_json(document) == roles["inference"]["policy"]

    record = f"arn:aws:s3:::{env.data_bucket}/models/records/v0000000001.json"
    denied = sn46(
        "infra", "iam", "--env", "test", "--role", "inference", "--check", "s3:PutObject", record, "--json"
    )
    assert denied.returncode == 1 and one_json(denied)["allowed"] is False
    allowed = sn46(
        "infra",
        "iam",
        "--env",
        "test",
        "--role",
        "inference",
        "--check",
        "s3:ListBucket",
        f"arn:aws:s3:::{env.data_bucket}",
        "--context",
        "s3:prefix=models/pins/",
    )
    assert allowed.returncode == 0 and "allowed by statement ListDataStore" in allowed.stdout

    text = sn46("infra", "iam", "--env", "test")
    assert text.returncode == 0 and "# gateway:" in text.stdout and "# note: no account id" in text.stdout


def test_iam_arguments_that_cannot_work_exit_2(env):
    assert sn46("infra", "iam", "--env", "test", "--document").returncode == 2  # which role?
    out = sn46("infra", "iam", "--env", "test", "--account-id", "42", "--json")
    assert out.returncode == 2 and "expected 12 digits" in one_json(out)["error"]
