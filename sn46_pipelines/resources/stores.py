"""Object-store resources for the environment's data store."""

import dagster as dg

from ..config import load_settings
from ..objectstore import ObjectStore


class DataStoreResource(dg.ConfigurableResource):
    """The store holding miner uploads, curated listings and validator views.

    Empty ``url`` means the environment's ``data_store`` (``SN46_ENV``,
    ``SN46_DATA_STORE``), resolved when a run or tick starts, not at load time.
    Either way the store gets the environment's endpoint, region and
    object-store credentials (read from AWS Secrets Manager where the
    environment says so; see docs/secrets.md), so no secret is ever part of a
    resource's config, which Dagster shows in its UI and stores with each run.
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
