"""Deployment descriptions as plain data: the training pod and ECS task, their settings, run roles.

No Dagster here: the Dagster resource (:mod:`sn46_pipelines.resources.training`)
hands these dicts to the Pipes clients, and tests and tools build and check
them without an orchestrator or a cluster.
"""

from .run_roles import RUN_ROLES, k8s_step_role_tags, run_role_tags
from .settings import LAUNCHERS, VARIABLES, LaunchSettings, resolve_launch_settings

__all__ = [
    "LAUNCHERS",
    "RUN_ROLES",
    "VARIABLES",
    "LaunchSettings",
    "k8s_step_role_tags",
    "resolve_launch_settings",
    "run_role_tags",
]
