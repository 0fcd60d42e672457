"""The input vector, the data preparation and the zpid split."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from sn46_pipelines.listings.schema import CURATED_SCHEMA
from sn46_pipelines.pricemodel.features import (
    OTHER,
    FeatureSpec,
    data_version,
    encode,
    fit_spec,
    limit_rows,
    listings_table,
    prepare,
    validation_mask,
    zpid_hashes,
)


def test_spec_round_trips_through_json_and_names_every_input(listings):
    spec = fit_spec(prepare(listings))
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec
    assert spec.columns[:5] == ["living_area", "bedrooms", "bathrooms", "latitude", "longitude"]
    assert f"zip_code={OTHER}" in spec.columns and f"home_type={OTHER}" in spec.columns
    assert len(spec.columns) == spec.n_inputs == encode(listings.slice(0, 3), spec).shape[1]
    assert "78701" in spec.categorical[-1].vocabulary


def test_an_edited_feature_config_is_refused(listings):
    raw = fit_spec(prepare(listings)).to_dict()
    raw["columns"] = raw["columns"][::-1]
    with pytest.raises(ValueError, match="disagree"):
        FeatureSpec.from_dict(raw)
    with pytest.raises(ValueError, match="format"):
        FeatureSpec.from_dict({**raw, "format": "other/9"})


def test_encoding_fills_gaps_and_sends_unknown_categories_to_other(listings):
    spec = fit_spec(prepare(listings))
    rows = listings_table(
        [
            {
                "living_area": 1500.0,
                "bedrooms": 3,
                "bathrooms": 2.0,
                "latitude": 30.2,
                "longitude": -97.7,
                "home_type": "CONDO",
                "zip_code": "78701",
                "not_a_feature": "ignored",
            },
            {"zip_code": "99999", "home_type": "CASTLE"},
        ]
    )
    x = encode(rows, spec)
    col = {name: i for i, name in enumerate(spec.columns)}
    assert x.dtype == np.float32
    assert x[0, col["living_area"]] == 1500.0 and x[0, col["zip_code=78701"]] == 1.0
    assert x[0, col["home_type=CONDO"]] == 1.0 and x[0, col[f"zip_code={OTHER}"]] == 0.0
    assert x[1, col["living_area"]] == spec.numeric[0].fill  # the training median
    assert x[1, col[f"zip_code={OTHER}"]] == 1.0 and x[1, col[f"home_type={OTHER}"]] == 1.0
    assert x.sum(axis=1)[1] == pytest.approx(
        sum(f.fill for f in spec.numeric) + len(spec.categorical)
    )  # one per block


def test_rare_categories_are_not_in_the_vocabulary(listings):
    rare = listings.slice(0, 3).set_column(
        listings.schema.get_field_index("zip_code"), "zip_code", pa.array(["00501"] * 3)
    )
    spec = fit_spec(prepare(pa.concat_tables([listings, rare])), min_category_count=5)
    assert "00501" not in spec.categorical[-1].vocabulary


def test_prepare_keeps_each_zpid_once_newest_first_and_drops_unusable_prices():
    def row(zpid, price, day):
        return {
            "zpid": zpid,
            "price": price,
            "datetime": datetime(2026, 11, day, tzinfo=UTC),
            "living_area": 1000.0,
            "home_type": "CONDO",
            "zip_code": "78701",
        }

    table = pa.Table.from_pylist(
        [
            row("2", 100.0, 1),
            row("1", 200.0, 1),
            row("1", 300.0, 5),
            row("3", 0.0, 1),
            row("4", None, 1),
            row("5", float("nan"), 1),
        ],
        schema=pa.schema(
            [
                CURATED_SCHEMA.field(n)
                for n in ("zpid", "price", "datetime", "living_area", "home_type", "zip_code")
            ]
        ),
    ).append_column("bedrooms", pa.array([None] * 6, pa.int32()))
    for name in ("bathrooms", "latitude", "longitude"):
        table = table.append_column(name, pa.array([None] * 6, pa.float64()))
    prepared = prepare(table)
    assert prepared.column("zpid").to_pylist() == ["1", "2"]
    assert prepared.column("price").to_pylist() == [300.0, 100.0]


def test_prepare_and_data_version_ignore_row_order_and_see_any_change(listings):
    shuffled = listings.take(np.random.default_rng(1).permutation(listings.num_rows))
    assert prepare(shuffled).equals(prepare(listings))
    assert data_version(prepare(shuffled)) == data_version(prepare(listings))
    prices = listings.column("price").to_numpy().copy()
    prices[17] += 1000
    changed = listings.set_column(listings.schema.get_field_index("price"), "price", pa.array(prices))
    assert data_version(prepare(changed)) != data_version(prepare(listings))


def test_the_split_puts_each_zpid_on_one_side_for_good(listings):
    table = prepare(pa.concat_tables([listings, listings]))  # duplicates collapse before splitting
    zpids = table.column("zpid").to_pylist()
    mask = validation_mask(zpid_hashes(zpids), 20)
    assert not set(np.array(zpids)[mask]) & set(np.array(zpids)[~mask])
    assert 0.15 < mask.mean() < 0.25
    assert np.array_equal(mask, validation_mask(zpid_hashes(zpids), 20))  # stable across calls
    subset = validation_mask(zpid_hashes(zpids[:100]), 20)
    assert np.array_equal(subset, mask[:100])  # a row's side does not depend on the others
    with pytest.raises(ValueError):
        validation_mask(zpid_hashes(zpids), 0)


def test_row_limit_is_a_fixed_sample_keeping_the_split_proportions(listings):
    table = prepare(listings)
    hashes = zpid_hashes(table.column("zpid").to_pylist())
    small, small_hashes = limit_rows(table, hashes, 1000)
    again, _ = limit_rows(table.take(np.arange(table.num_rows)[::-1].copy()), hashes[::-1].copy(), 1000)
    assert small.num_rows == 1000
    assert set(small.column("zpid").to_pylist()) == set(again.column("zpid").to_pylist())
    assert 0.12 < validation_mask(small_hashes, 20).mean() < 0.28
    assert limit_rows(table, hashes, 0)[0] is table
