"""The Dagster path: project resources read their keys from Secrets Manager (moto); no run record holds them.

A real instance on disk (sqlite event log, compute logs) runs the project's own
replication-check job and an asset that logs the credentials object on purpose;
afterwards every byte the instance wrote, and everything the process printed
or logged, is searched for the secret key.
"""

import json
from pathlib import Path

import dagster as dg
import pytest

from sn46_pipelines.config import load_settings
from sn46_pipelines.definitions import defs as _defs
from sn46_pipelines.defs.resources import DataStoreResource, ModelStoreResource

replication_check_job = _defs.resolve_job_def("replication_check_job")


@dg.asset
def secret_probe(context: dg.AssetExecutionContext, data_store: DataStoreResource) -> dg.MaterializeResult:
    """Writes through the data store, then logs and prints its credentials the way careless code would."""
    store = data_store.open()
    etag = store.put("probe/hello.txt", b"hello")
    credentials = load_settings().object_store_credentials()
    context.log.info(f"wrote {store!r} with {credentials!r}")
    print(f"stdout: credentials {credentials}")
    return dg.MaterializeResult(metadata={"etag": etag, "credentials": repr(credentials)})


def _resources() -> dict[str, object]:
    return {"data_store": DataStoreResource(), "model_store": ModelStoreResource()}


def _everything_written(root: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


@pytest.fixture
def instance(tmp_path: Path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


@pytest.fixture
def store_keys(store_secret, environment):
    """The environment reads its object-store keys from Secrets Manager; the process may only read secrets."""
    environment(source="aws-secrets-manager", object_store=store_secret.name)
    return store_secret.name, store_secret.store_user


def test_runs_use_the_secrets_keys_and_no_record_holds_them(
    store_keys, instance, iam_enforced, capfd, caplog, tmp_path
):
    name, store_user = store_keys
    iam_enforced()
    materialized = dg.materialize([secret_probe], resources=_resources(), instance=instance)
    assert materialized.success
    checked = (
        dg.Definitions(jobs=[replication_check_job], resources=_resources())
        .get_job_def("replication_check_job")
        .execute_in_process(instance=instance)
    )
    assert checked.success  # both model stores opened through the secret's keys (moto checks signatures)
    assert load_settings().open_data_store().get("probe/hello.txt") == b"hello"

    logged = [record.user_message for record in instance.all_logs(materialized.run_id)]
    assert any("**********" in message and name in message for message in logged)  # logged, masked
    compute_logs = list((tmp_path / "dagster").rglob("*.out"))
    assert any(b"stdout: credentials" in path.read_bytes() for path in compute_logs)  # captured, masked
    secret = store_user.secret.encode()
    assert secret not in _everything_written(tmp_path / "dagster")
    out, err = capfd.readouterr()
    assert store_user.secret not in out + err + caplog.text


def test_a_malformed_secret_fails_the_run_naming_the_key_not_the_value(
    store_keys, secretsmanager, instance, tmp_path
):
    name, store_user = store_keys
    secretsmanager.put_secret_value(
        SecretId=name,
        SecretString=json.dumps(
            {"aws_access_key_id": store_user.key_id, "AWS_SECRET_ACCESS_KEY": store_user.secret}
        ),
    )
    result = dg.materialize([secret_probe], resources=_resources(), instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    cause = failure.step_failure_data.error.cause  # Dagster wraps the op's exception
    assert cause.cls_name == "MalformedSecretError"
    assert f"secret {name!r} has no key 'aws_secret_access_key'" in cause.message
    assert "the keys are lower case" in cause.message
    assert store_user.secret.encode() not in _everything_written(tmp_path / "dagster")
