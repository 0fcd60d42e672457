"""The model-store resource: the environment's hash-chained model store and its replica."""

import dagster as dg

from ..config import load_settings
from ..modelstore import ModelStore


class ModelStoreResource(dg.ConfigurableResource):
    """Opens the environment's model store (``SN46_MODEL_STORE`` overrides); ``url`` overrides both.

    Resolved when a run starts, so one code location serves every environment.
    Both stores get the environment's object-store credentials, as
    :class:`~sn46_pipelines.resources.stores.DataStoreResource` does.
    """

    url: str = ""
    replica_url: str = ""

    def open(self) -> ModelStore:
        settings = load_settings()
        return ModelStore(settings.open_store(self.url or settings.model_store))

    def open_replica(self) -> ModelStore:
        """The disaster-recovery replica (``replica_url``, else the environment's ``replica_store``)."""
        settings = load_settings()
        url = self.replica_url or settings.replica_store
        if not url:
            raise dg.DagsterInvariantViolationError(f"environment {settings.env!r} has no replica store")
        return ModelStore(settings.open_store(url))
