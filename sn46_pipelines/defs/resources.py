"""The Dagster resources every domain shares: the environment's data store and model store.

Both resolve when a run or a tick starts, not when the code location loads,
so one code location serves every environment. Either way a store gets the
environment's endpoint, region and object-store credentials (read from AWS
Secrets Manager where the environment says so; see docs/secrets.md), so no
secret is ever part of a resource's config, which Dagster shows in its UI and
stores with each run.
"""

import dagster as dg

from ..config import load_settings
from ..modelstore import ModelStore
from ..objectstore import ObjectStore


class DataStoreResource(dg.ConfigurableResource):
    """The store holding miner uploads, curated listings and validator views.

    Empty ``url`` means the environment's ``data_store`` (``SN46_ENV``, ``SN46_DATA_STORE``).
    """

    url: str = ""
    events_queue: str = ""
    """SQS queue URL of upload notifications (event mode); empty means the environment's, if any."""

    def open(self) -> ObjectStore:
        settings = load_settings()
        return settings.open_store(self.url or settings.data_store)

    def events_queue_url(self) -> str | None:
        """The upload-notification queue, or ``None`` for listing mode."""
        return self.events_queue or load_settings().upload_events_queue


class ModelStoreResource(dg.ConfigurableResource):
    """Opens the environment's model store (``SN46_MODEL_STORE`` overrides); ``url`` overrides both."""

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
