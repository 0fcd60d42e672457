"""Environments load, variables override them, and bad values name the field and its source."""

from __future__ import annotations

import pytest

from sn46_pipelines.config import ENVIRONMENTS, ConfigError, load_settings, project_home

BUCKETS = {
    "dev": "1000-resilabs-caleb-dev-bittensor-sn46-datacollection",
    "test": "2000-resilabs-test-bittensor-sn46-datacollection",
    "staging": "3000-resilabs-staging-bittensor-sn46-datacollection",
    "prod": "4000-resilabs-prod-bittensor-sn46-datacollection",
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_loads(env):
    s = load_settings(env, environ={})
    assert s.env == env
    assert (s.netuid, s.network) == (46, "finney")
    assert (s.rate_limits.per_miner, s.rate_limits.per_validator, s.rate_limits.total) == (
        50,
        20_000,
        500_000,
    )
    assert 1 <= s.gc.keep_min_versions <= s.gc.keep_versions
    assert s.inference.poll_interval > 0
    if env == "local":
        home = project_home().resolve()
        assert s.data_store == f"file://{home}/.sn46/local/data"
        assert s.model_store.startswith(f"file://{home}/.sn46/")
    else:
        assert s.data_store == f"s3://{BUCKETS[env]}"
        assert s.model_store.startswith(f"s3://{BUCKETS[env]}/")
        assert s.region == "us-east-2"


def test_local_is_the_default_and_sn46_env_selects():
    assert load_settings(environ={}).env == "local"
    assert load_settings(environ={"SN46_ENV": "staging"}).env == "staging"
    assert load_settings("prod", environ={"SN46_ENV": "dev"}).env == "prod"  # an explicit argument wins


def test_gc_presets_follow_the_model_store_guide():
    assert (
        load_settings("local", environ={}).gc.keep_versions,
        load_settings("local", environ={}).gc.keep_min_versions,
    ) == (5, 3)
    prod = load_settings("prod", environ={}).gc
    assert (prod.keep_versions, prod.keep_min_versions) == (20, 5)


def test_variables_override_the_file():
    s = load_settings(
        "prod",
        environ={
            "SN46_DATA_STORE": "s3://other-bucket/data",
            "SN46_MODEL_STORE": "file:///srv/models",
            "SN46_REPLICA_STORE": "s3://dr-bucket/models",
            "AWS_ENDPOINT_URL": "http://minio:9000",
        },
    )
    assert (s.data_store, s.model_store, s.replica_store, s.endpoint_url) == (
        "s3://other-bucket/data",
        "file:///srv/models",
        "s3://dr-bucket/models",
        "http://minio:9000",
    )


def test_sn46_home_moves_the_local_folders(tmp_path):
    s = load_settings("local", environ={"SN46_HOME": str(tmp_path)})
    assert s.data_store == f"file://{tmp_path}/.sn46/local/data"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"SN46_DATA_STORE": "ftp://x"},
            r"data_store: not a store URL .*'ftp://x' \[from variable SN46_DATA_STORE\]",
        ),
        ({"SN46_MODEL_STORE": "s3://B"}, r"model_store: .* \[from variable SN46_MODEL_STORE\]"),
        (
            {"AWS_ENDPOINT_URL": "minio:9000"},
            r"endpoint_url: not an http\(s\) URL .*'minio:9000' \[from variable AWS_ENDPOINT_URL\]",
        ),
        ({"SN46_ENV": "qa"}, r"unknown environment 'qa' \(variable SN46_ENV\)"),
    ],
)
def test_bad_variables_name_field_and_source(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def _write_env(tmp_path, text: str):
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    (folder / "local.yaml").write_text(text)
    return {"SN46_CONFIG_DIR": str(folder)}


BASE = "data_store: file:///d\nmodel_store: file:///m\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "netuid: -1\n", r"netuid: .*greater than or equal to 0"),
        (BASE + "rate_limits:\n  per_miner: 0\n", r"rate_limits.per_miner: .*greater than or equal to 1"),
        (
            BASE + "gc:\n  keep_versions: 3\n  keep_min_versions: 9\n",
            r"gc: keep_min_versions \(9\) exceeds keep_versions \(3\)",
        ),
        (BASE + "gc:\n  preset: reckless\n", r"gc.preset: "),
        (BASE + "inference:\n  mode: sometimes\n", r"inference.mode: "),
        (BASE + "bucket: x\n", r"bucket: Extra inputs are not permitted"),
        ("model_store: file:///m\n", r"data_store: Field required"),
        ("data_store: [unclosed\n", r"not valid YAML"),
        ("- a list\n", r"expected a mapping"),
    ],
)
def test_bad_files_name_field_and_file(tmp_path, monkeypatch, text, message):
    environ = _write_env(tmp_path, text)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings("local", environ=environ)
    if "YAML" not in message and "mapping" not in message:
        assert f"[from {tmp_path}/config/local.yaml]" in str(info.value)


def test_missing_environment_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("SN46_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=rf"{tmp_path}/local.yaml: environment file not found"):
        load_settings("local", environ={})


def test_settings_open_their_stores(tmp_path):
    s = load_settings("local", environ={"SN46_HOME": str(tmp_path)})
    assert s.open_data_store().url == f"file://{tmp_path}/.sn46/local/data"
    assert s.open_replica_store().url == f"file://{tmp_path}/.sn46/local/models-replica"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_names_its_secrets_never_holds_them(env):
    secrets = load_settings(env, environ={}).secrets
    if env == "local":
        assert (secrets.source, secrets.object_store, secrets.redis) == ("env", None, None)
        return
    assert secrets.source == ("env" if env == "test" else "aws-secrets-manager")
    assert (secrets.redis, secrets.dagster_postgres) == (f"sn46/{env}/redis", f"sn46/{env}/dagster-postgres")
    # On AWS the stores sign with each task's role (least privilege), not with shared keys.
    assert secrets.object_store == (f"sn46/{env}/object-store" if env == "test" else None)


def test_secrets_come_from_secrets_manager_only_where_the_source_says_so():
    test_env = load_settings("test", environ={}).secrets
    assert test_env.secret_id("object-store") is None  # source env: variables and boto3's chain
    switched = load_settings("test", environ={"SN46_SECRETS_SOURCE": "aws-secrets-manager"}).secrets
    assert switched.secret_id("object-store") == "sn46/test/object-store"
    assert switched.secret_id("dagster-postgres") == "sn46/test/dagster-postgres"
    on_premises = load_settings("prod", environ={"SN46_SECRETS_SOURCE": "env"})
    assert on_premises.secrets.secret_id("redis") is None
    assert on_premises.object_store_credentials() is None  # nothing is read


def test_a_bad_secrets_source_names_the_variable():
    with pytest.raises(
        ConfigError,
        match=r"secrets.source: Input should be 'env' or 'aws-secrets-manager' "
        r"\[from variable SN46_SECRETS_SOURCE\]",
    ):
        load_settings("prod", environ={"SN46_SECRETS_SOURCE": "vault"})


PASTED = "wJalrXUtnFEMI-pasted-by-mistake"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE + f"secrets:\n  source: aws-secrets-manager\n  redis: 'redis://:{PASTED}@cache:6379/0'\n",
            r"secrets.redis: not a Secrets Manager name .*; a secret's value never belongs in a config file",
        ),
        (
            BASE + f"secrets:\n  object_store:\n    aws_secret_access_key: {PASTED}\n",
            r"secrets.object_store: Input should be a valid string \[from ",
        ),
        (
            BASE + f"aws_secret_access_key: {PASTED}\n",
            r"aws_secret_access_key: Extra inputs are not permitted; a secret never belongs in a config file",
        ),
        (
            BASE + f"secrets:\n  password: {PASTED}\n",
            r"secrets.password: Extra inputs are not permitted; a secret never belongs in a config file",
        ),
    ],
)
def test_a_secret_pasted_into_a_config_file_is_refused_and_never_repeated(
    tmp_path, monkeypatch, text, message
):
    environ = _write_env(tmp_path, text)
    monkeypatch.setenv("SN46_CONFIG_DIR", environ["SN46_CONFIG_DIR"])
    with pytest.raises(ConfigError, match=message) as info:
        load_settings("local", environ=environ)
    assert PASTED not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # pydantic's, with the input


def test_secret_ids_may_be_names_or_arns(tmp_path, monkeypatch):
    arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:sn46/prod/redis-AbCdEf"
    environ = _write_env(tmp_path, BASE + f"secrets:\n  source: aws-secrets-manager\n  redis: {arn}\n")
    monkeypatch.setenv("SN46_CONFIG_DIR", environ["SN46_CONFIG_DIR"])
    assert load_settings("local", environ=environ).secrets.secret_id("redis") == arn
