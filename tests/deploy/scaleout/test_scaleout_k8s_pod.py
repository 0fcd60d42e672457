"""The GPU training pod, built the way PipesK8sClient builds what it submits
(dagster_k8s.pipes.build_pod_body)."""

import json

import kubernetes
import pytest
from dagster_k8s.pipes import build_pod_body

from sn46_pipelines.deploy import resolve_launch_settings
from sn46_pipelines.deploy.k8s import training_pod_metadata, training_pod_spec
from sn46_pipelines.deploy.training import container_environment

ACCESS_KEY, SECRET_KEY = "AKIAEXAMPLEKEY000001", "wJalrXUtnFEMI/K7MDENG/notarealsecret"
PIPES_ENV = {"DAGSTER_PIPES_CONTEXT": "eyJjb250ZXh0IjoxfQ==", "DAGSTER_PIPES_MESSAGES": "eyJzdGRpbyI6MX0="}


def submitted_pod(environ: dict[str, str], *, endpoint_url: str | None = None) -> dict:
    """The pod as the Kubernetes API would receive it from the k8s launcher (camelCase JSON)."""
    settings = resolve_launch_settings({}, {"SN46_TRAINING_LAUNCHER": "k8s", **environ})
    environment = container_environment(
        "prod", "us-east-2", endpoint_url, injected_credentials=bool(settings.k8s_secret)
    )
    pod = build_pod_body(
        pod_name="dagster-run-1234-price-model",
        image=None,
        command=None,
        env_vars=PIPES_ENV,
        base_pod_meta=training_pod_metadata("prod"),
        base_pod_spec=training_pod_spec(settings, environment),
    )
    assert isinstance(pod, kubernetes.client.V1Pod)
    return kubernetes.client.ApiClient().sanitize_for_serialization(pod)


@pytest.fixture(autouse=True)
def credentials_in_the_launching_process(monkeypatch):
    """The Dagster process holds real-looking keys: none of them may reach the pod spec."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)


def test_gpu_pod_requests_gpus_on_gpu_nodes_with_the_project_image():
    pod = submitted_pod(
        {"SN46_IMAGE": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sn46:2026.11", "SN46_GPU_COUNT": "2"}
    )
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "123456789012.dkr.ecr.us-east-2.amazonaws.com/sn46:2026.11"
    assert container["command"] == ["python", "-m", "sn46_pipelines.pricemodel.pipes_train"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"] == {"cpu": "3000m", "memory": "12288Mi"}
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["restartPolicy"] == "Never"
    assert pod["metadata"]["name"] == "dagster-run-1234-price-model"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "sn46-train"


def test_env_holds_the_environment_and_pipes_and_credentials_only_as_secret_references():
    pod = submitted_pod({"SN46_IMAGE": "sn46:gpu"}, endpoint_url="http://minio.storage:9000")
    env = {item["name"]: item for item in pod["spec"]["containers"][0]["env"]}
    assert {name: item["value"] for name, item in env.items() if "value" in item} == {
        "SN46_ENV": "prod",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "SN46_SECRETS_SOURCE": "env",
        **PIPES_ENV,
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "sn46-object-store", "key": "aws_access_key_id"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "sn46-object-store", "key": "aws_secret_access_key"}
    }
    text = json.dumps(pod)
    assert ACCESS_KEY not in text and SECRET_KEY not in text


def test_cpu_pod_without_secret_relies_on_its_service_account():
    pod = submitted_pod(
        {
            "SN46_IMAGE": "sn46:cpu",
            "SN46_GPU_COUNT": "0",
            "SN46_K8S_SECRET": "",
            "SN46_K8S_SERVICE_ACCOUNT": "sn46-training",
        }
    )
    spec = pod["spec"]
    container = spec["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert spec["serviceAccountName"] == "sn46-training"
    assert not any("valueFrom" in item for item in container["env"])
    assert "SN46_SECRETS_SOURCE" not in {item["name"] for item in container["env"]}


def test_custom_gpu_placement_reaches_the_pod():
    pod = submitted_pod(
        {
            "SN46_IMAGE": "sn46:gpu",
            "SN46_K8S_NODE_SELECTOR": "cloud.google.com/gke-accelerator=nvidia-h100-80gb",
            "SN46_K8S_TOLERATIONS": (
                '[{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]'
            ),
        }
    )
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert pod["spec"]["tolerations"] == [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]
