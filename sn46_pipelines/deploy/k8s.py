"""The Kubernetes pod that trains the price model, as the plain dicts ``PipesK8sClient`` takes.

``training_pod_spec`` is the whole pod spec except Dagster's own Pipes
variables, which ``PipesK8sClient`` appends to the first container when it
submits the pod. Credentials are references to a Kubernetes Secret
(``secretKeyRef``), never values, so the spec can be logged and shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .settings import LaunchSettings
from .training import CONTAINER_NAME, CREDENTIAL_KEYS, TRAIN_COMMAND

#: Extended resource name of NVIDIA GPUs (the NVIDIA device plugin advertises it).
GPU_RESOURCE = "nvidia.com/gpu"


def training_pod_metadata(env: str) -> dict[str, Any]:
    """Labels that find training pods (``kubectl get pods -l app.kubernetes.io/name=sn46-train``)."""
    return {
        "labels": {
            "app.kubernetes.io/name": CONTAINER_NAME,
            "app.kubernetes.io/part-of": "sn46-pipelines",
            "sn46/env": env,
        }
    }


def training_pod_spec(settings: LaunchSettings, environment: Mapping[str, str]) -> dict[str, Any]:
    """The training pod: the project image, GPUs, GPU-node placement and secret references.

    ``environment`` holds the plain variables (see
    :func:`.training.container_environment`); the object-store keys come from
    ``settings.k8s_secret`` when one is named.
    """
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(TRAIN_COMMAND),
        "env": [{"name": name, "value": value} for name, value in sorted(environment.items())]
        + _secret_env(settings.k8s_secret),
        "resources": _resources(settings),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if settings.node_selector:
        spec["nodeSelector"] = settings.node_selector
    if settings.tolerations:
        spec["tolerations"] = settings.tolerations
    if settings.k8s_service_account:
        spec["serviceAccountName"] = settings.k8s_service_account
    return spec


def _secret_env(secret: str) -> list[dict[str, Any]]:
    if not secret:
        return []
    return [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for variable, key in CREDENTIAL_KEYS.items()
    ]


def _resources(settings: LaunchSettings) -> dict[str, dict[str, str]]:
    """Requests equal to limits for memory (never evicted for overuse), GPUs as a limit (the only way
    Kubernetes takes extended resources); CPU is requested, not capped, so data loading may burst."""
    memory = f"{round(settings.memory_gib * 1024)}Mi"
    requests = {"cpu": f"{round(settings.cpu * 1000)}m", "memory": memory}
    limits = {"memory": memory}
    if settings.gpu_count:
        limits[GPU_RESOURCE] = str(settings.gpu_count)
    return {"requests": requests, "limits": limits}
