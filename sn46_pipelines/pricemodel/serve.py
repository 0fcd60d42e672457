"""The inference HTTP app: ``POST /predict`` and ``GET /health`` over an :class:`InferenceClient`.

Each request reads the client's served model once (one reference) and
answers with that model and its version, so a hot swap in the middle of a
request cannot mix two models: requests that started on the old version
finish on it, later ones get the new one, none fail. The predictor is
immutable and torch inference is read-only, so requests run concurrently in
the worker thread pool.

``GET /metrics`` is the Prometheus scrape (docs/training.md, Serving): request
latency by route, listings priced, and the client's served version and poll
state, read from the client at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from ..config import InferencePin
from ..errors import UsageError
from ..httpmetrics import HttpMetrics
from ..modelstore import InferenceClient, InvalidRecordError
from ..modelstore.pins import PinMode
from ..modelstore.record import parse_version

#: Listings one request may price: bounds a request's memory and latency.
MAX_BATCH = 10_000


class Listing(BaseModel):
    """One home; any feature may be missing (it is then filled as in training). Other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    living_area: float | None = Field(None, ge=0, description="square feet")
    bedrooms: float | None = Field(None, ge=0)
    bathrooms: float | None = Field(None, ge=0)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    home_type: str | None = Field(None, max_length=64, examples=["SINGLE_FAMILY"])
    zip_code: str | None = Field(None, max_length=10, examples=["78701"])
    lot_size: float | None = Field(None, ge=0, description="square feet")
    year_built: float | None = Field(None, ge=1000, le=3000)
    days_on_zillow: float | None = Field(None, ge=0, description="days on market")
    home_status: str | None = Field(None, max_length=64, examples=["RECENTLY_SOLD"])


class PredictRequest(BaseModel):
    listings: list[Listing] = Field(min_length=1, max_length=MAX_BATCH)


class PredictResponse(BaseModel):
    prices: list[float]
    version_id: str
    record_hash: str


def serve_target(inference: InferencePin, *, pin: str | None = None, version: str | None = None) -> str:
    """What to serve: ``--version``, else ``--pin``, else the environment's ``inference`` settings.

    The environment's pinned mode serves ``pin:NAME``; tracking mode serves
    the head; a configured ``counter`` serves that fixed version. A
    ``version`` that names no version is refused here, before anything starts
    (anything else would be read as a pin name).
    """
    if version:
        if version != "head":
            try:
                parse_version(version)
            except InvalidRecordError:
                raise UsageError(
                    f"--version {version!r}: give a version (v0000000012 or 12) or head; "
                    "--pin NAME follows a pin"
                ) from None
        return version
    if pin:
        return f"pin:{pin}"
    if inference.counter is not None:
        return str(inference.counter)
    return "head" if inference.mode == PinMode.TRACKING else f"pin:{inference.pin}"


class ClientCollector(Collector):
    """The served version and the poll state of an :class:`InferenceClient`, read at each scrape.

    Read live rather than kept in metrics: nothing to update on a swap, no
    stale version label left behind, and it works the same in multiprocess mode.
    """

    def __init__(self, client: InferenceClient, namespace: str) -> None:
        self.client, self.namespace = client, namespace

    def collect(self) -> Iterator[Metric]:
        ns, client = self.namespace, self.client
        served, health, last_poll = client.served, client.health(), client.last_poll_at
        info = GaugeMetricFamily(
            f"{ns}_model_info",
            "1 for the version served, labelled by target, version_id and record_hash; none until loaded.",
            labels=("target", "version_id", "record_hash"),
        )
        loaded = GaugeMetricFamily(f"{ns}_model_loaded_timestamp_seconds", "When the served version loaded.")
        if served is not None:
            info.add_metric((client.target, served.record.version_id, served.record.record_hash), 1)
            loaded.add_metric((), served.loaded_at.timestamp())
        last = GaugeMetricFamily(
            f"{ns}_poll_last_timestamp_seconds", "When the last poll of the store ended."
        )
        last_ok = GaugeMetricFamily(f"{ns}_poll_last_ok", "1 if the last poll succeeded, 0 if it failed.")
        if last_poll is not None:
            last.add_metric((), last_poll.timestamp())
            last_ok.add_metric((), float(bool(health.last_poll_ok)))
        yield from (info, loaded, last, last_ok)
        yield GaugeMetricFamily(
            f"{ns}_poll_consecutive_failures", "Polls failed in a row.", value=health.consecutive_failures
        )
        yield GaugeMetricFamily(
            f"{ns}_polling", "1 while the poller thread runs.", value=float(health.polling)
        )
        yield GaugeMetricFamily(
            f"{ns}_healthy",
            "1 when a model is served and the last poll succeeded.",
            value=float(health.healthy),
        )


def create_app(client: InferenceClient) -> FastAPI:
    """The app; it starts the client's polling on startup and stops it on shutdown.

    Each app has its own metrics registry, so several apps in one process do not collide.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client.start()
        try:
            yield
        finally:
            client.stop()

    app = FastAPI(title="SN46 price model", lifespan=lifespan)
    metrics = HttpMetrics("sn46_inference")
    metrics.add_live(ClientCollector(client, metrics.namespace))
    predictions = metrics.counter("predictions", "Listings priced by /predict (up to 10,000 per request).")
    metrics.install(app)

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> dict[str, Any]:
        served = client.served  # one read: the model and its version always match
        if served is None:
            raise HTTPException(503, detail=f"no model loaded yet: {client.health().last_error}")
        prices = served.model.predict([listing.model_dump() for listing in request.listings])
        predictions.inc(len(prices))
        return {
            "prices": [round(float(p), 2) for p in prices],
            "version_id": served.record.version_id,
            "record_hash": served.record.record_hash,
        }

    @app.get("/health")
    def health() -> Any:
        status = client.health()
        body = status.to_dict()
        if not status.healthy and status.version_id is None:
            raise HTTPException(503, detail=body)
        return body

    return app
