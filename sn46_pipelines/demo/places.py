"""Real US zip codes the demo miners "scrape", with the facts a listing needs.

``price_per_sqft`` is a rough 2025 sold-price level for the area; it is what
makes the same house cost five times more in Manhattan than in Detroit, which
is most of what the demo price model has to learn.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    zip_code: str
    city: str
    state: str
    latitude: float
    longitude: float
    price_per_sqft: float


PLACES: tuple[Place, ...] = (
    Place("78701", "Austin", "TX", 30.2711, -97.7437, 450.0),
    Place("10001", "New York", "NY", 40.7506, -73.9972, 1400.0),
    Place("02134", "Boston", "MA", 42.3539, -71.1337, 750.0),
    Place("94110", "San Francisco", "CA", 37.7487, -122.4158, 1100.0),
    Place("60614", "Chicago", "IL", 41.9227, -87.6533, 400.0),
    Place("98103", "Seattle", "WA", 47.6733, -122.3426, 650.0),
    Place("33139", "Miami Beach", "FL", 25.7826, -80.1340, 700.0),
    Place("85004", "Phoenix", "AZ", 33.4513, -112.0685, 300.0),
    Place("30309", "Atlanta", "GA", 33.7980, -84.3880, 350.0),
    Place("80202", "Denver", "CO", 39.7530, -104.9990, 500.0),
    Place("97209", "Portland", "OR", 45.5310, -122.6840, 420.0),
    Place("37203", "Nashville", "TN", 36.1500, -86.7900, 400.0),
    Place("55401", "Minneapolis", "MN", 44.9840, -93.2700, 280.0),
    Place("48201", "Detroit", "MI", 42.3470, -83.0600, 120.0),
    Place("19103", "Philadelphia", "PA", 39.9520, -75.1740, 350.0),
    Place("75201", "Dallas", "TX", 32.7870, -96.7990, 330.0),
    Place("89101", "Las Vegas", "NV", 36.1720, -115.1220, 220.0),
    Place("28202", "Charlotte", "NC", 35.2270, -80.8430, 330.0),
    Place("64105", "Kansas City", "MO", 39.1030, -94.5900, 200.0),
    Place("84101", "Salt Lake City", "UT", 40.7560, -111.9000, 380.0),
    Place("96813", "Honolulu", "HI", 21.3100, -157.8580, 800.0),
    Place("99501", "Anchorage", "AK", 61.2180, -149.8800, 250.0),
    Place("70112", "New Orleans", "LA", 29.9560, -90.0770, 200.0),
    Place("46204", "Indianapolis", "IN", 39.7710, -86.1570, 180.0),
    Place("15222", "Pittsburgh", "PA", 40.4470, -79.9930, 190.0),
    Place("92101", "San Diego", "CA", 32.7190, -117.1630, 750.0),
)

STREETS: tuple[str, ...] = (
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main",
    "Sunset", "Lincoln", "Jefferson", "Highland", "Walnut", "Willow", "River", "Church", "Spring", "Meadow",
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pl")
