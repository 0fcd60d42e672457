"""The inference HTTP app: ``POST /predict`` and ``GET /health`` over an :class:`InferenceClient`.

Each request reads the client's served model once (one reference) and
answers with that model and its version, so a hot swap in the middle of a
request cannot mix two models: requests that started on the old version
finish on it, later ones get the new one, none fail. The predictor is
immutable and torch inference is read-only, so requests run concurrently in
the worker thread pool.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from ..config import InferencePin
from ..modelstore import InferenceClient
from ..modelstore.pins import TRACKING

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
    the head; a configured ``counter`` serves that fixed version.
    """
    if version:
        return version
    if pin:
        return f"pin:{pin}"
    if inference.counter is not None:
        return str(inference.counter)
    return "head" if inference.mode == TRACKING else f"pin:{inference.pin}"


def create_app(client: InferenceClient) -> FastAPI:
    """The app; it starts the client's polling on startup and stops it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client.start()
        try:
            yield
        finally:
            client.stop()

    app = FastAPI(title="SN46 price model", lifespan=lifespan)

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> dict[str, Any]:
        served = client.served  # one read: the model and its version always match
        if served is None:
            raise HTTPException(503, detail=f"no model loaded yet: {client.health().last_error}")
        prices = served.model.predict([listing.model_dump() for listing in request.listings])
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
