"""The demo seeder writes a realistic SN46 upload area, deterministically, with the defects it reports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from bittensor.sp_core import Keypair

from sn46_pipelines.cli import build_parser
from sn46_pipelines.demo import DEFECTS, SeedReport, seed_demo
from sn46_pipelines.listings.keys import parse_upload_key
from sn46_pipelines.listings.layout import METAGRAPH_KEY
from sn46_pipelines.listings.schema import COLUMNS, LISTING_SCHEMA
from sn46_pipelines.objectstore import open_store
from tests.demo.demo_helpers import assert_planted, read

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[object, SeedReport]:
    """One default demo seed on the folder backend, shared by the read-only tests below."""
    store = open_store(f"file://{tmp_path_factory.mktemp('demo')}")
    return store, seed_demo(store, seed=7, now=NOW)


def test_layout_on_both_backends(store) -> None:
    report = seed_demo(store, miners=3, validators=2, seed=1, now=NOW)
    listed = {o.key: o.size for o in store.list("data/")}
    assert listed == {f.key: f.size for f in report.files}
    for miner in report.miners:
        jobs = {f.job_id for f in miner.files}
        assert 2 <= len(jobs) <= 4  # 2-3 own jobs, plus the donor's job for the copier
        for f in miner.files:
            parsed = parse_upload_key(f.key)
            assert parsed.hotkey == miner.hotkey and parsed.job_id == f.job_id
            assert re.fullmatch(r"zillow_premium_zip_\d{5}_sold", f.job_id)
            assert NOW - timedelta(days=4) < parsed.timestamp <= NOW


def test_hotkeys_are_real_deterministic_sr25519_keys(seeded) -> None:
    _, report = seeded
    expected = [Keypair.create_from_uri(f"//sn46-demo-miner-{i}").ss58_address for i in range(12)]
    assert [m.hotkey for m in report.miners] == expected
    assert len({m.hotkey for m in report.miners} | {v.hotkey for v in report.validators}) == 15


def test_metagraph_snapshot_lists_miners_and_validators(seeded) -> None:
    store, report = seeded
    doc = json.loads(store.get(METAGRAPH_KEY))
    assert doc["netuid"] == 46 and doc["block"] == report.block > 0
    neurons = {n["hotkey"]: n for n in doc["neurons"]}
    assert sorted(n["uid"] for n in doc["neurons"]) == list(range(15))
    for miner in report.miners:
        n = neurons[miner.hotkey]
        assert n["uid"] == miner.uid and not n["validator_permit"] and n["stake"] < 10_000
    validators = [n for n in doc["neurons"] if n["validator_permit"]]
    assert len(validators) == 3 and all(n["stake"] > 10_000 for n in validators)
    assert all(set(n) == {"uid", "hotkey", "coldkey", "validator_permit", "stake"} for n in doc["neurons"])


def test_clean_files_have_the_declared_columns_and_sane_content(seeded) -> None:
    store, report = seeded
    clean = [f for f in report.files if not f.planted]
    assert len(clean) >= 20
    for f in clean:
        table = read(store, f.key)
        assert table.schema == LISTING_SCHEMA and tuple(table.column_names) == COLUMNS
        assert table.num_rows == f.rows == parse_upload_key(f.key).rows
        assert f.size > 1024
        zip_code = f.job_id.split("_")[3]
        assert set(table.column("zip_code").to_pylist()) == {zip_code}
        assert len(set(table.column("zpid").to_pylist())) == table.num_rows
        prices = table.column("price").to_numpy()
        assert (prices >= 10_000).all() and (prices <= 50_000_000).all()
        ages = [NOW - d for d in table.column("datetime").to_pylist()]
        assert all(timedelta(0) <= age < timedelta(days=11) for age in ages)


def test_price_is_a_learnable_function_of_the_features(seeded) -> None:
    store, report = seeded
    table = pa.concat_tables(read(store, f.key) for f in report.miners[0].files)
    zips = sorted(set(table.column("zip_code").to_pylist()))
    log_price = np.log(table.column("price").to_numpy())
    features = np.column_stack(
        [
            np.ones(table.num_rows),
            np.log(table.column("living_area").to_numpy()),
            table.column("bedrooms").to_numpy(),
            table.column("bathrooms").to_numpy(),
            *[table.column("zip_code").to_numpy(zero_copy_only=False) == z for z in zips[1:]],
        ]
    ).astype(float)
    coef, *_ = np.linalg.lstsq(features, log_price, rcond=None)
    residual = log_price - features @ coef
    assert 1 - residual.var() / log_price.var() > 0.6


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    stores = [open_store(f"file://{tmp_path / name}") for name in ("a", "b", "c")]
    first = seed_demo(stores[0], miners=4, seed=3, now=NOW)
    second = seed_demo(stores[1], miners=4, seed=3, now=NOW)
    other = seed_demo(stores[2], miners=4, seed=4, now=NOW)
    assert [f.key for f in first.files] == [f.key for f in second.files]
    for f in first.files:
        assert stores[0].get(f.key) == stores[1].get(f.key)
    assert stores[0].get(METAGRAPH_KEY) == stores[1].get(METAGRAPH_KEY)
    assert {f.key for f in first.files}.isdisjoint(f.key for f in other.files)


def test_every_defect_is_planted_once_and_reported(seeded) -> None:
    _, report = seeded
    assert report.miners[0].defects == [] and report.miners[-1].defects == []
    assert sorted(d for m in report.miners for d in m.defects) == sorted(DEFECTS)
    assert report.unplanted == []


def test_few_miners_report_the_defects_left_out(tmp_path) -> None:
    report = seed_demo(open_store(f"file://{tmp_path}"), miners=3, seed=0, now=NOW)
    assert [m.defects for m in report.miners] == [[], ["duplicates"], ["copied_rows"]]
    assert report.unplanted == list(DEFECTS)[2:]


def test_planted_defects_are_in_the_files(seeded) -> None:
    store, report = seeded
    assert all(f.round == 0 for f in report.files)
    assert_planted(store, report, 0, NOW)


def test_cli_seed_prints_a_json_report(tmp_path, capsys) -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "demo",
            "seed",
            "--store",
            f"file://{tmp_path}",
            "--miners",
            "2",
            "--seed",
            "5",
            "--now",
            "2026-11-23",
            "--json",
        ]
    )
    assert args.handler(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == 5 and doc["now"] == "2026-11-23T00:00:00+00:00" and len(doc["miners"]) == 2
    assert doc["miners"][1]["expected"] == {"duplicate": 18}


def test_cli_refuses_to_seed_a_production_data_store_by_default(monkeypatch) -> None:
    from sn46_pipelines.config import ConfigError

    monkeypatch.setenv("SN46_ENV", "prod")
    monkeypatch.setenv("SN46_DATA_STORE", "s3://resi-prod-uploads/sn46")
    parser = build_parser()
    for argv in (["demo", "seed"], ["demo"]):
        args = parser.parse_args(argv)
        with pytest.raises(ConfigError, match="refusing to write synthetic uploads into the prod data store"):
            args.handler(args)


def test_naive_now_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        seed_demo(open_store(f"file://{tmp_path}"), now=NOW.replace(tzinfo=None))
