"""The regional demo set: one metro, neighbouring zips, prices driven by where and what a home is."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow.compute as pc

from sn46_pipelines.demo.places import AUSTIN, AUSTIN_CENTER
from sn46_pipelines.demo.region import location_factor, regional_listings
from sn46_pipelines.listings.schema import UPLOAD_SCHEMA

NEWEST = datetime(2026, 11, 20, tzinfo=UTC)


def test_one_metro_in_upload_columns_and_the_same_arguments_give_the_same_table():
    table = regional_listings(2_000, newest=NEWEST)
    assert table.schema.equals(UPLOAD_SCHEMA) and table.num_rows == 2_000
    assert table.equals(regional_listings(2_000, newest=NEWEST))
    assert not table.equals(regional_listings(2_000, seed=1, newest=NEWEST))
    assert sorted(set(table.column("zip_code").to_pylist())) == sorted(p.place.zip_code for p in AUSTIN)
    for name, center in zip(("latitude", "longitude"), AUSTIN_CENTER):
        values = table.column(name).to_numpy()
        assert np.abs(values - center).max() < 0.25 and values.std() < 0.1
    assert len(set(table.column("zpid").to_pylist())) == 2_000
    assert pc.all(pc.greater(table.column("price"), 10_000)).as_py()
    datetimes = table.column("datetime")
    assert pc.max(datetimes).as_py() <= NEWEST


def test_prices_follow_location_size_and_age_with_noise_left_over():
    table = regional_listings(6_000, newest=NEWEST)
    log_price = np.log(table.column("price").to_numpy())
    area = np.log(table.column("living_area").to_numpy())
    age = NEWEST.year - table.column("year_built").to_numpy()
    lat, lon = table.column("latitude").to_numpy(), table.column("longitude").to_numpy()
    zips = np.array(table.column("zip_code").to_pylist())
    # Within one zip, where a home stands still matters: the smooth location field varies.
    one = zips == "78704"
    assert np.ptp(np.log(location_factor(lat[one], lon[one]))) > 0.05
    design = np.column_stack(
        [np.ones_like(area), area, np.log(location_factor(lat, lon)), np.minimum(age, 60)]
        + [(zips == p.place.zip_code).astype(float) for p in AUSTIN[1:]]
    )
    coef, *_ = np.linalg.lstsq(design, log_price, rcond=None)
    residual = log_price - design @ coef
    assert 0.75 < coef[1] < 1.05  # about proportional to area (rooms, which grow with it, included)
    assert coef[3] < 0  # older homes (up to 60 years) cost less
    assert 0.1 < residual.std() < 0.3  # features explain most of it, not all
    assert 1 - residual.var() / log_price.var() > 0.7
    lots = table.column("lot_size")
    assert 0 < lots.null_count < table.num_rows  # condos and apartments have no lot of their own
