"""The cloud identity of the model-store jobs' runs: tags that ECS and Kubernetes run launchers read.

A Dagster run starts with the run launcher's identity: the ECS run task's role
or the Kubernetes run pod's service account, both the ``pipeline`` role of
``sn46 infra iam``. That role may not delete model-store blobs or write the
replica, so ``gc_job`` and ``replication_check_job`` would fail there with
AccessDenied. These tags make the launcher start their runs as the ``gc`` and
``replication`` roles instead:

- ECS (``EcsRunLauncher``): ``ecs/task_overrides`` with ``taskRoleArn``, from
  ``SN46_ECS_TASK_ROLE_ARN_GC`` / ``_REPLICATION``. The daemon's role needs
  ``iam:PassRole`` on those roles.
- Kubernetes: ``dagster-k8s/config`` with the pod's ``service_account_name``,
  from ``SN46_K8S_SERVICE_ACCOUNT_GC`` / ``_REPLICATION`` (a service account
  bound to the IAM role, e.g. with IRSA). ``K8sRunLauncher`` reads the job's
  tag for the run pod; ``k8s_job_executor`` reads only the op's tag for a
  step's pod, so the op carries it too.

The variables are read when the code location loads, because job tags are
fixed then. Unset, the runs keep the launcher's identity (local runs, or a
deployment where the run role is allowed everything). A malformed value
stops the load with the variable named, rather than failing at 02:00.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from ..config import ConfigError, problem

#: Roles of ``sn46 infra iam`` that a run of a model-store job may take instead of the pipeline's.
RUN_ROLES = ("gc", "replication")

ECS_TASK_OVERRIDES_TAG = "ecs/task_overrides"
K8S_CONFIG_TAG = "dagster-k8s/config"

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
#: A Kubernetes object name (DNS-1123 subdomain).
_SERVICE_ACCOUNT = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def ecs_role_variable(role: str) -> str:
    """``SN46_ECS_TASK_ROLE_ARN_GC`` for ``gc``: the IAM role ARN of the role's ECS run tasks."""
    return f"SN46_ECS_TASK_ROLE_ARN_{_known(role).upper()}"


def k8s_service_account_variable(role: str) -> str:
    """``SN46_K8S_SERVICE_ACCOUNT_GC`` for ``gc``: the service account of the role's run and step pods."""
    return f"SN46_K8S_SERVICE_ACCOUNT_{_known(role).upper()}"


def run_role_tags(role: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Job tags that start the job's runs as ``role`` (ECS task role, Kubernetes run pod); empty if unset."""
    environ = os.environ if environ is None else environ
    tags = k8s_step_role_tags(role, environ)
    arn = _value(
        environ, ecs_role_variable(role), _ROLE_ARN, "an IAM role ARN, arn:aws:iam::123456789012:role/NAME"
    )
    if arn:
        tags[ECS_TASK_OVERRIDES_TAG] = json.dumps({"taskRoleArn": arn})
    return tags


def k8s_step_role_tags(role: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Op tags that give the op's step pods (``k8s_job_executor``) the role's service account."""
    environ = os.environ if environ is None else environ
    account = _value(
        environ,
        k8s_service_account_variable(role),
        _SERVICE_ACCOUNT,
        "a Kubernetes service account name (lowercase letters, digits, '-' and '.')",
    )
    if not account:
        return {}
    return {K8S_CONFIG_TAG: json.dumps({"pod_spec_config": {"service_account_name": account}})}


def _known(role: str) -> str:
    if role not in RUN_ROLES:
        raise ValueError(f"unknown run role {role!r}; run roles are {', '.join(RUN_ROLES)}")
    return role


def _value(environ: Mapping[str, str], variable: str, pattern: re.Pattern[str], expected: str) -> str:
    value = environ.get(variable, "").strip()
    if value and not pattern.match(value):
        raise ConfigError(problem(variable, f"expected {expected}", got=value, source=f"variable {variable}"))
    return value
