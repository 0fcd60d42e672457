"""Object-store resources for the environment's data store."""

from __future__ import annotations

import dagster as dg

from ..config import load_settings
from ..objectstore import ObjectStore, open_store


class DataStoreResource(dg.ConfigurableResource):
    """The store holding miner uploads, curated listings and validator views.

    Empty ``url`` means the environment's ``data_store`` (``SN46_ENV``,
    ``SN46_DATA_STORE``), resolved when a run or tick starts, not at load time.
    """

    url: str = ""
    events_queue: str = ""
    """SQS queue URL of upload notifications (event mode); empty means the environment's, if any."""

    def open(self) -> ObjectStore:
        settings = load_settings()
        if self.url:
            return open_store(self.url, endpoint_url=settings.endpoint_url, region=settings.region)
        return settings.open_data_store()

    def events_queue_url(self) -> str | None:
        """The upload-notification queue, or ``None`` for listing mode."""
        return self.events_queue or load_settings().upload_events_queue
