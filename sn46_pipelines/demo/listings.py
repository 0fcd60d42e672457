"""Synthetic sold listings whose prices a model can actually learn.

Price = area price level x living_area^0.9 x home-type factor x small
bedroom/bathroom premiums x lognormal noise (sigma 0.15): features explain
most of the variance, noise keeps it honest.

A later upload round scrapes most of the same homes again (:func:`rescrape`):
same zpid, address and features, a new scrape time, and now and then a
revised price or a changed status, as a miner re-scraping its zips each epoch
sees them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from sn46_pipelines.listings.schema import LISTING_SCHEMA

from .places import STREET_SUFFIXES, STREETS, Place

#: home_type -> (share of listings, median living area in sqft, price factor)
HOME_TYPES: dict[str, tuple[float, float, float]] = {
    "SINGLE_FAMILY": (0.55, 1900.0, 1.00),
    "CONDO": (0.18, 950.0, 0.92),
    "TOWNHOUSE": (0.12, 1500.0, 0.95),
    "MULTI_FAMILY": (0.08, 2800.0, 0.85),
    "APARTMENT": (0.04, 850.0, 0.90),
    "MANUFACTURED": (0.03, 1200.0, 0.45),
}
PRICE_NOISE_SIGMA = 0.15
_TYPICAL_AREA = 1900.0


def listing_price(
    price_per_sqft: np.ndarray | float,
    living_area: np.ndarray,
    bedrooms: np.ndarray,
    bathrooms: np.ndarray,
    type_factor: np.ndarray,
) -> np.ndarray:
    """The noiseless price of a home: the function the demo model should recover."""
    return (
        np.asarray(price_per_sqft)
        * living_area**0.9
        * _TYPICAL_AREA**0.1  # a typical home costs price_per_sqft x area, before premiums
        * type_factor
        * (1 + 0.03 * bedrooms)
        * (1 + 0.05 * bathrooms)
    )


def synth_listings(
    rng: np.random.Generator,
    place: Place,
    zpids: np.ndarray,
    *,
    newest: datetime,
    window: timedelta = timedelta(days=7),
    home_status: str = "RECENTLY_SOLD",
) -> pa.Table:
    """One row per zpid in ``place``, scraped in ``(newest - window, newest]``, in declared types."""
    n = len(zpids)
    names = list(HOME_TYPES)
    shares = np.array([HOME_TYPES[t][0] for t in names])
    kinds = rng.choice(len(names), size=n, p=shares / shares.sum())
    median_area = np.array([HOME_TYPES[t][1] for t in names])[kinds]
    living_area = np.clip(np.round(median_area * rng.lognormal(0.0, 0.35, n), -1), 300, 12_000)
    bedrooms = np.clip(np.round(living_area / 650 + rng.normal(0.3, 0.7, n)), 0, 9).astype(np.int32)
    bathrooms = np.clip(np.round((bedrooms * 0.7 + rng.normal(0.4, 0.5, n)) * 2) / 2, 1, 8)
    factor = np.array([HOME_TYPES[t][2] for t in names])[kinds]
    price = listing_price(place.price_per_sqft, living_area, bedrooms, bathrooms, factor)
    price = np.round(price * rng.lognormal(0.0, PRICE_NOISE_SIGMA, n), -3)

    scraped_at = scrape_times(rng, n, newest, window)
    numbers = rng.integers(1, 9999, n)
    streets = rng.integers(0, len(STREETS), n)
    suffixes = rng.integers(0, len(STREET_SUFFIXES), n)
    streets_text = [f"{n} {STREETS[s]} {STREET_SUFFIXES[x]}" for n, s, x in zip(numbers, streets, suffixes)]
    zpid_text = [str(z) for z in zpids]
    where = f"{place.city}, {place.state} {place.zip_code}"
    slug_tail = f"{place.city.replace(' ', '-')}-{place.state}-{place.zip_code}"
    columns = {
        "uri": [f"https://www.zillow.com/homedetails/{z}_zpid/" for z in zpid_text],
        "datetime": scraped_at,
        "label": [f"zip:{place.zip_code}"] * n,
        "zpid": zpid_text,
        "price": price,
        "address": [f"{s}, {where}" for s in streets_text],
        "bedrooms": bedrooms,
        "bathrooms": bathrooms,
        "living_area": living_area,
        "home_type": [names[k] for k in kinds],
        "home_status": [home_status] * n,
        "days_on_zillow": rng.integers(1, 180, n).astype(np.int32),
        "url": [
            f"https://www.zillow.com/homedetails/{s.replace(' ', '-')}-{slug_tail}/{z}_zpid/"
            for s, z in zip(streets_text, zpid_text)
        ],
        "zip_code": [place.zip_code] * n,
        "city": [place.city] * n,
        "state": [place.state] * n,
        "latitude": np.round(place.latitude + rng.normal(0, 0.012, n), 6),
        "longitude": np.round(place.longitude + rng.normal(0, 0.012, n), 6),
    }
    return pa.table(columns, schema=LISTING_SCHEMA)


#: Share of re-scraped listings whose price moved since the last scrape, and by how much at most.
PRICE_REVISED_SHARE = 0.2
PRICE_REVISION = 0.04
#: Share of re-scraped listings whose status moved on (Zillow relabels older sales).
STATUS_CHANGED_SHARE = 0.03
STATUS_LATER = "SOLD"


def scrape_times(rng: np.random.Generator, n: int, newest: datetime, window: timedelta) -> pa.Array:
    """``n`` scrape times in ``(newest - window, newest]``, to the microsecond."""
    age_us = rng.integers(0, int(window.total_seconds() * 1e6), n)
    newest_us = int(newest.timestamp() * 1e6)
    return pa.array(newest_us - age_us, pa.int64()).cast(LISTING_SCHEMA.field("datetime").type)


def rescrape(rng: np.random.Generator, seen: pa.Table, *, newest: datetime, window: timedelta) -> pa.Table:
    """``seen``'s homes scraped again in ``(newest - window, newest]``.

    Identity and features stay (zpid, address, zip, area, rooms); the scrape
    time is new, so the row is a newer observation of the same listing, never
    a verbatim repeat. About :data:`PRICE_REVISED_SHARE` get a price revised by
    1 % to :data:`PRICE_REVISION` (to the nearest $1,000, as listed prices are)
    and :data:`STATUS_CHANGED_SHARE` move on to :data:`STATUS_LATER`.
    """
    n = seen.num_rows
    price = seen.column("price").to_numpy()
    revised = rng.random(n) < PRICE_REVISED_SHARE
    change = rng.choice([-1.0, 1.0], n) * rng.uniform(0.01, PRICE_REVISION, n)
    price = np.where(revised, np.round(price * (1 + change), -3), price)
    status = seen.column("home_status").to_numpy(zero_copy_only=False)
    status = np.where(rng.random(n) < STATUS_CHANGED_SHARE, STATUS_LATER, status)
    updates = {
        "datetime": scrape_times(rng, n, newest, window),
        "price": pa.array(price, pa.float64()),
        "home_status": pa.array(status, pa.string()),
    }
    for name, values in updates.items():
        seen = seen.set_column(seen.schema.get_field_index(name), name, values)
    return seen
