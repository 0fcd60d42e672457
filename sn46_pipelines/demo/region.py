"""A regional demo data set: one metro's sold homes, as a price model meets real data.

The multi-city set (:data:`.places.PLACES`) has one zip per city, so its
coordinates span a continent and a zip code alone explains most of a price.
Real uploads from one metro look nothing like that: every coordinate is
within about 0.2 degrees, zip codes are neighbours, and what separates a
$300k home from a $900k one is the block it stands on, its size and its
condition. This set has that structure, so a model that extrapolates on
coordinates or never learns within-zip location effects fails on it:

* location: each zip's price level (:data:`.places.AUSTIN`), times a smooth
  field over the coordinates (prices fall with the distance to downtown and
  rise to the west, towards the lake), so two homes in one zip differ by
  where they are;
* the home: living area (about ``area^0.85``), home type, bedrooms and
  bathrooms, lot size and age (older homes cost less, historic ones a
  little more), each home's own price per square foot (lognormal, sigma
  :data:`PRICE_NOISE_SIGMA`);
* the sale: days on market (homes that sit sell lower).

Rows come in :data:`~sn46_pipelines.listings.schema.UPLOAD_SCHEMA`: the
upload columns plus ``lot_size`` and ``year_built``, as epoch/zipcode
uploads carry them (``epoch_id`` stays null, as for a job file).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from sn46_pipelines.listings.schema import UPLOAD_SCHEMA

from .listings import synth_listings
from .places import AUSTIN, AUSTIN_CENTER, MetroZip

#: Noise of a home's own price per square foot: what no feature explains.
PRICE_NOISE_SIGMA = 0.12
#: Kilometres per degree of latitude, and of longitude at Austin's latitude.
KM_PER_DEGREE = (111.0, 96.0)


def location_factor(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """The smooth part of the location effect: -2 % per km from downtown, +1.5 % per km west of it."""
    north = (latitude - AUSTIN_CENTER[0]) * KM_PER_DEGREE[0]
    east = (longitude - AUSTIN_CENTER[1]) * KM_PER_DEGREE[1]
    return np.exp(-0.02 * np.hypot(north, east) - 0.015 * east)


def regional_listings(
    rows: int = 3_000, *, seed: int = 0, newest: datetime, window: timedelta = timedelta(days=7)
) -> pa.Table:
    """``rows`` sold homes spread over the Austin zips (zpids 1..rows), scraped in ``(newest - window,
    newest]``; the same arguments give the same table."""
    rng = np.random.default_rng([seed, 0xA057])
    weights = np.array([p.homes for p in AUSTIN], dtype=np.float64)
    counts = np.bincount(rng.choice(len(AUSTIN), size=rows, p=weights / weights.sum()), minlength=len(AUSTIN))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    parts = [
        _homes(rng, place, np.arange(start, start + count) + 1, newest, window)
        for place, start, count in zip(AUSTIN, starts, counts)
        if count
    ]
    return pa.concat_tables(parts)


def _homes(
    rng: np.random.Generator, place: MetroZip, zpids: np.ndarray, newest: datetime, window: timedelta
) -> pa.Table:
    """One zip's homes: the multi-city generator's rows, re-priced with the regional structure."""
    table = synth_listings(rng, place.place, zpids, newest=newest, window=window)
    n = table.num_rows
    area = table.column("living_area").to_numpy()
    bedrooms = table.column("bedrooms").to_numpy().astype(np.float64)
    bathrooms = table.column("bathrooms").to_numpy()
    kinds = table.column("home_type").to_pylist()
    detached = np.array([k in ("SINGLE_FAMILY", "MULTI_FAMILY", "MANUFACTURED") for k in kinds])
    lot = np.where(detached, np.round(area * rng.lognormal(np.log(place.lot_ratio), 0.4, n), -1), np.nan)
    year = np.clip(np.round(rng.normal(place.typical_year, 18, n)), 1900, newest.year).astype(np.int32)
    days = table.column("days_on_zillow").to_numpy().astype(np.float64)
    latitude = table.column("latitude").to_numpy()
    longitude = table.column("longitude").to_numpy()
    type_factor = np.array([_TYPE_FACTOR.get(k, 1.0) for k in kinds])

    price = (
        place.place.price_per_sqft
        * location_factor(latitude, longitude)
        / location_factor(np.array(place.place.latitude), np.array(place.place.longitude))
        * area**0.85
        * 1900.0**0.15
        * type_factor
        * (1 + 0.02 * bedrooms)
        * (1 + 0.04 * bathrooms)
        * np.where(np.isfinite(lot), (np.nan_to_num(lot, nan=1.0) / (2.5 * area)) ** 0.08, 1.0)
        * _age_factor(newest.year - year)
        * np.exp(-0.0008 * days)
        * rng.lognormal(0.0, PRICE_NOISE_SIGMA, n)
    )
    columns = {
        "price": pa.array(np.round(price, -3), pa.float64()),
        "lot_size": pa.array(lot, pa.float64(), from_pandas=True),
        "year_built": pa.array(year, pa.int32()),
        "epoch_id": pa.nulls(n, pa.string()),
    }
    for name, values in columns.items():
        if name in table.column_names:
            table = table.set_column(table.schema.get_field_index(name), name, values)
        else:
            table = table.append_column(UPLOAD_SCHEMA.field(name), values)
    return table.select(UPLOAD_SCHEMA.names)


#: Home types priced differently here than in the multi-city set (condos trade at a premium downtown).
_TYPE_FACTOR = {"CONDO": 1.05, "TOWNHOUSE": 0.97, "MULTI_FAMILY": 0.9, "APARTMENT": 0.92, "MANUFACTURED": 0.5}


def _age_factor(age: np.ndarray) -> np.ndarray:
    """New homes cost most; value falls about 0.4 % a year for 60 years, then historic homes gain back."""
    return np.exp(-0.004 * np.minimum(age, 60) + 0.002 * np.maximum(age - 60, 0))
