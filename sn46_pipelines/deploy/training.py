"""What a training container is, wherever it runs: its command, name, plain environment and credentials.

The Kubernetes pod (:mod:`.k8s`) and the ECS task (:mod:`.ecs`) are two
wrappings of the same container, so what they must agree on lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import ConfigError

#: The Dagster Pipes entry point, as the project image runs it.
TRAIN_COMMAND = ("python", "-m", "sn46_pipelines.pricemodel.pipes_train")

#: Name of the training container (in the pod and in the task definition).
CONTAINER_NAME = "sn46-train"

#: Object-store credentials: variable in the container -> key in the secret. The same keys name the
#: fields of the Secrets Manager secret ``sn46/<env>/object-store`` and of the Kubernetes Secret.
CREDENTIAL_KEYS = {"AWS_ACCESS_KEY_ID": "aws_access_key_id", "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key"}


def container_environment(
    env: str, region: str, endpoint_url: str | None, *, injected_credentials: bool
) -> dict[str, str]:
    """The training container's plain variables: which environment it serves and where S3 is.

    Nothing secret belongs here: these end up in pod specs and task
    definitions that anyone with read access to the cluster can see. When
    the platform injects the object-store keys as variables
    (``injected_credentials``), ``SN46_SECRETS_SOURCE=env`` tells the
    child's configuration to use them rather than read Secrets Manager
    itself: the container then needs no Secrets Manager permission, and its
    only AWS calls are to S3.
    """
    environment = {"SN46_ENV": env, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    if endpoint_url:
        environment["AWS_ENDPOINT_URL"] = endpoint_url
    if injected_credentials:
        environment["SN46_SECRETS_SOURCE"] = "env"
    return environment


def require_remote_stores(launcher: str, stores: Mapping[str, str]) -> None:
    """Refuse folder stores for a launcher whose container runs on another machine.

    A pod or task cannot read ``file://`` paths of the Dagster host; without
    this check training would fail inside the container with a confusing
    "folder not found".
    """
    local = {name: url for name, url in stores.items() if url.startswith("file://")}
    if local:
        named = ", ".join(f"{name} {url}" for name, url in local.items())
        raise ConfigError(
            f"the {launcher} training launcher runs the training container on another machine, "
            f"which cannot read {named}: use s3:// stores (SN46_DATA_STORE, SN46_MODEL_STORE)"
        )
