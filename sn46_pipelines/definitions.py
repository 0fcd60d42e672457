"""The one Dagster ``Definitions`` object of the project (``workspace.yaml`` loads it).

Each domain under :mod:`sn46_pipelines.defs` builds its own definitions for
the environment (``SN46_ENV``): listings, training, the model store, and the
instance's own run history. This module merges them, adds the automation
sensors that run everything after ingest (:mod:`sn46_pipelines.defs.automation`),
the shared resources, source-code links for the UI, and the executor.
"""

import dagster as dg

from .config import Settings, load_settings
from .defs import listings, modelstore, run_history, training
from .defs.automation import automation_sensors, with_automation
from .defs.resources import DataStoreResource, ModelStoreResource


def run_executor(settings: Settings) -> dg.ExecutorDefinition | None:
    """Dagster's default (steps as processes of the run), or one Kubernetes pod per step.

    ``executor: k8s`` (or ``SN46_EXECUTOR=k8s``) selects ``k8s_job_executor``
    (with the Helm chart's ``K8sRunLauncher``: deploy/helm/values.yaml). It is
    read when the code location loads, as an executor must be, and only
    imports dagster-k8s: no cluster is contacted until a run starts.
    """
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every domain's definitions for one environment, with automation and code references."""
    merged = dg.Definitions.merge(
        listings.build_defs(settings),
        training.build_defs(),
        modelstore.build_defs(settings),
        run_history.build_defs(settings),
    )
    defined = list(merged.assets or [])
    assets = [asset for asset in defined if isinstance(asset, dg.AssetsDefinition | dg.AssetSpec)]
    if len(assets) != len(defined):  # source or cacheable assets would need their own automation wiring
        raise TypeError("the domains must define assets as AssetsDefinition or AssetSpec")
    assets = with_automation(assets, settings.automation)
    return dg.Definitions(
        assets=dg.with_source_code_references(assets),
        asset_checks=merged.asset_checks,
        jobs=merged.jobs,
        schedules=merged.schedules,
        sensors=[*(merged.sensors or []), *automation_sensors(settings.automation)],
        resources={
            **(merged.resources or {}),
            "data_store": DataStoreResource(),
            "model_store": ModelStoreResource(),
        },
        executor=run_executor(settings),
    )


defs = build_definitions(load_settings())
