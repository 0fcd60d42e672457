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
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Sunset",
    "Lincoln",
    "Jefferson",
    "Highland",
    "Walnut",
    "Willow",
    "River",
    "Church",
    "Spring",
    "Meadow",
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pl")


@dataclass(frozen=True, slots=True)
class MetroZip:
    """A zip code of the regional set (:mod:`.region`): its place, and what its homes are like."""

    place: Place
    #: Relative number of sales (the regional set draws its homes in these proportions).
    homes: float
    #: Typical lot size over living area, and typical year built.
    lot_ratio: float
    typical_year: int


#: Downtown Austin: the regional set's prices fall with the distance from here.
AUSTIN_CENTER = (30.2672, -97.7431)


def _austin(
    zip_code: str,
    latitude: float,
    longitude: float,
    per_sqft: float,
    homes: float,
    lot_ratio: float,
    typical_year: int,
) -> MetroZip:
    place = Place(zip_code, "Austin", "TX", latitude, longitude, per_sqft)
    return MetroZip(place, homes, lot_ratio, typical_year)


#: Twenty Austin zip codes, all within about 0.2 degrees of downtown, with rough 2025 price levels:
#: the regional demo set (:func:`.region.regional_listings`).
AUSTIN: tuple[MetroZip, ...] = (
    _austin("78701", 30.2711, -97.7437, 600.0, 0.6, 1.2, 2008),
    _austin("78702", 30.2636, -97.7166, 450.0, 1.0, 2.8, 1975),
    _austin("78703", 30.2937, -97.7654, 700.0, 0.8, 4.0, 1965),
    _austin("78704", 30.2428, -97.7658, 550.0, 1.4, 3.2, 1972),
    _austin("78705", 30.2947, -97.7389, 450.0, 0.5, 2.0, 1970),
    _austin("78721", 30.2700, -97.6832, 320.0, 0.7, 3.5, 1985),
    _austin("78722", 30.2893, -97.7150, 430.0, 0.4, 2.6, 1950),
    _austin("78723", 30.3045, -97.6861, 330.0, 1.0, 3.2, 1968),
    _austin("78731", 30.3471, -97.7681, 500.0, 0.9, 4.5, 1982),
    _austin("78741", 30.2315, -97.7218, 300.0, 0.9, 2.8, 1983),
    _austin("78744", 30.1760, -97.7390, 230.0, 1.1, 3.4, 1995),
    _austin("78745", 30.2072, -97.7956, 320.0, 1.5, 3.0, 1980),
    _austin("78746", 30.2957, -97.8108, 650.0, 0.9, 5.5, 1990),
    _austin("78748", 30.1630, -97.8225, 260.0, 1.2, 3.0, 2000),
    _austin("78749", 30.2140, -97.8570, 300.0, 1.1, 3.2, 1992),
    _austin("78751", 30.3096, -97.7236, 450.0, 0.6, 2.5, 1948),
    _austin("78752", 30.3318, -97.7004, 300.0, 0.7, 2.8, 1965),
    _austin("78756", 30.3224, -97.7398, 480.0, 0.5, 2.7, 1952),
    _austin("78757", 30.3516, -97.7337, 400.0, 0.8, 3.0, 1962),
    _austin("78727", 30.4256, -97.7194, 280.0, 1.0, 2.9, 1994),
)
