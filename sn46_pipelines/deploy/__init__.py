"""Deployment descriptions as plain data: the training pod, the training ECS task, their settings.

No Dagster here: the Dagster resource (:mod:`sn46_pipelines.resources.training`)
hands these dicts to the Pipes clients, and tests and tools build and check
them without an orchestrator or a cluster.
"""

from .settings import LAUNCHERS, VARIABLES, LaunchSettings, resolve_launch_settings

__all__ = ["LAUNCHERS", "VARIABLES", "LaunchSettings", "resolve_launch_settings"]
