"""Several upload rounds: the same miners re-scrape the same homes every interval, come and go,
and keep their planted defects, all reproducible from the seed's arguments."""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sn46_pipelines.cli import build_parser
from sn46_pipelines.demo import SeededMiner, SeedReport, seed_demo
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.listings.keys import parse_upload_key
from sn46_pipelines.objectstore import ObjectStore, open_store
from tests.demo.demo_helpers import assert_planted, files_in, read

NOW = datetime(2026, 12, 3, tzinfo=UTC)
ROUNDS = 6
INTERVAL = timedelta(hours=2)
#: What a re-scrape of a home never changes.
SAME_HOME = ("zpid", "address", "zip_code", "city", "living_area", "bedrooms", "home_type", "url")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[ObjectStore, SeedReport]:
    """Six 2-hourly rounds of the default twelve miners on the folder backend, read-only below."""
    store = open_store(f"file://{tmp_path_factory.mktemp('rounds')}")
    return store, seed_demo(store, seed=7, now=NOW, rounds=ROUNDS, interval=INTERVAL)


def snapshot(store: ObjectStore) -> dict[str, bytes]:
    return {o.key: store.get(o.key) for o in store.list("")}


def clean_rows(store: ObjectStore, miner: SeededMiner, round_index: int) -> dict[str, dict]:
    """The miner's clean rows of one round, by zpid."""
    clean = [f for f in files_in(miner, round_index) if not f.planted]
    return {r["zpid"]: r for r in pa.concat_tables(read(store, f.key) for f in clean).to_pylist()}


def test_same_arguments_give_identical_keys_and_bytes(tmp_path) -> None:
    stores = []
    for name, interval in (("a", INTERVAL), ("b", INTERVAL), ("c", timedelta(minutes=30))):
        (tmp_path / name).mkdir()
        stores.append(open_store(f"file://{tmp_path / name}"))
        seed_demo(stores[-1], miners=5, seed=3, now=NOW, rounds=3, interval=interval)
    first, second, other = (snapshot(s) for s in stores)
    assert first == second and len(first) > 20
    assert len(set(first) & set(other)) < len(first) // 4  # another interval dates the files anew


def test_rounds_written_one_at_a_time_are_the_rounds_written_at_once(tmp_path) -> None:
    (tmp_path / "once").mkdir()
    (tmp_path / "stepwise").mkdir()
    once, stepwise = open_store(f"file://{tmp_path / 'once'}"), open_store(f"file://{tmp_path / 'stepwise'}")
    whole = seed_demo(once, miners=5, seed=2, now=NOW, rounds=3)
    steps = [seed_demo(stepwise, miners=5, seed=2, now=NOW, rounds=3, only_round=r) for r in range(3)]
    assert snapshot(once) == snapshot(stepwise)
    assert [s.rounds for s in steps] == [[r] for r in whole.rounds]
    assert steps[-1].block == whole.block > steps[0].block


def test_round_zero_is_the_single_round_seed_at_its_time(tmp_path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "six").mkdir()
    one, six = open_store(f"file://{tmp_path / 'one'}"), open_store(f"file://{tmp_path / 'six'}")
    single = seed_demo(one, seed=7, now=NOW - (ROUNDS - 1) * INTERVAL)
    several = seed_demo(six, seed=7, now=NOW, rounds=ROUNDS, interval=INTERVAL, only_round=0)
    written = snapshot(six)
    assert set(several.rounds[0].uploaded) < {m.hotkey for m in single.miners}  # late joiners are missing
    for miner in single.miners:
        if miner.hotkey in several.rounds[0].uploaded:
            assert {f.key: one.get(f.key) for f in miner.files} == {
                f.key: written[f.key] for f in miner.files
            }


def test_rounds_are_an_interval_apart_and_dated_at_their_time(seeded) -> None:
    store, report = seeded
    assert [r.at for r in report.rounds] == [NOW - (ROUNDS - 1 - r) * INTERVAL for r in range(ROUNDS)]
    assert report.round_count == ROUNDS and report.now == NOW
    for r in report.rounds:
        for f in (f for m in report.miners for f in files_in(m, r.index)):
            stamped = parse_upload_key(f.key).timestamp
            if r.index == 0:
                assert r.at - timedelta(days=3) <= stamped <= r.at  # the miners' backlog
                continue
            assert r.at - INTERVAL / 4 <= stamped <= r.at
            if not f.planted:
                scraped = read(store, f.key).column("datetime").to_pylist()
                assert all(r.at - INTERVAL / 2 <= d <= stamped for d in scraped)


def test_consecutive_rounds_of_a_miner_overlap_by_about_70_percent(seeded) -> None:
    store, report = seeded
    revised = status_changed = reobserved = 0
    for miner in report.miners:
        rounds = miner.rounds()
        for before, after in itertools.pairwise(rounds):
            was, now = clean_rows(store, miner, before), clean_rows(store, miner, after)
            again = was.keys() & now.keys()
            assert 0.6 <= len(again) / len(now) <= 0.8, (miner.uid, after)
            assert 0.6 <= len(again) / len(was) <= 0.8, (miner.uid, after)
            for zpid in again:
                a, b = was[zpid], now[zpid]
                assert [a[c] for c in SAME_HOME] == [b[c] for c in SAME_HOME]
                assert b["datetime"] > a["datetime"]
                revised += a["price"] != b["price"]
                status_changed += a["home_status"] != b["home_status"]
            reobserved += len(again)
    assert 0.1 < revised / reobserved < 0.3  # some prices revised
    assert 0 < status_changed / reobserved < 0.06  # a few statuses moved on


def test_miners_join_late_and_leave_early(seeded) -> None:
    _, report = seeded
    by_hotkey = {m.hotkey: m for m in report.miners}
    for r in report.rounds:
        assert sorted(r.uploaded) == sorted(m.hotkey for m in report.miners if files_in(m, r.index))
    joined = [(r.index, h) for r in report.rounds for h in r.joined]
    left = [(r.index, h) for r in report.rounds for h in r.left]
    assert report.rounds[0].joined == [] and report.rounds[0].left == []
    assert len(joined) == 2 and len(left) == 1
    for index, hotkey in joined:
        assert by_hotkey[hotkey].rounds() == list(range(index, ROUNDS))
    for index, hotkey in left:
        assert by_hotkey[hotkey].rounds() == list(range(index))
        assert by_hotkey[hotkey].defects == []  # an honest miner that stops: its score decays
    assert report.miners[0].rounds() == list(range(ROUNDS))  # the donor copiers copy from never leaves
    summary = report.summary()
    assert f"round 6/6 at {NOW.isoformat()}" in summary and "joined" in summary and "left" in summary


def test_every_defect_is_planted_in_every_round_its_miner_uploads(seeded) -> None:
    store, report = seeded
    for r in report.rounds:
        assert_planted(store, report, r.index, r.at)
    for miner in report.miners[1:]:
        if not miner.defects:
            continue
        (defect,) = miner.defects
        first, *later = miner.rounds()
        for index in (first, *later):
            assert any(defect in f.planted for f in files_in(miner, index)), (defect, index)
            assert miner.expected_in(index) == miner.expected_in(first)


@pytest.mark.parametrize("store_url", ["file", "s3"], indirect=True)
def test_a_later_round_updates_listings_and_only_planted_rows_are_quarantined(store) -> None:
    """Ingested round by round, every miner's quarantine is exactly what its round planted: a home
    uploaded again in a later round is an update, never a duplicate."""
    for index in range(3):
        report = seed_demo(store, seed=1, now=NOW, rounds=3, only_round=index)
        (written,) = report.rounds
        for miner in report.miners:
            if not files_in(miner, index):
                continue
            result = ingest_hotkey(store, miner.hotkey, now=written.at + timedelta(minutes=30)).result
            found = {reason: n for reason, n in result.reason_counts().items() if n}
            assert found == miner.expected_in(index), (index, miner.defects)


def test_seed_refuses_nonsense_rounds(tmp_path) -> None:
    store = open_store(f"file://{tmp_path}")
    with pytest.raises(ValueError, match="at least one round"):
        seed_demo(store, rounds=0, now=NOW)
    with pytest.raises(ValueError, match="at least 0:10:00 apart"):
        seed_demo(store, rounds=2, interval=timedelta(minutes=5), now=NOW)
    with pytest.raises(ValueError, match=r"only_round must be a round of 0\.\.2, not 3"):
        seed_demo(store, rounds=3, only_round=3, now=NOW)
    assert list(store.list("")) == []


def parser() -> argparse.ArgumentParser:
    return build_parser()


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("10M", timedelta(minutes=10)),
    ],
)
def test_cli_interval_accepts_minutes_hours_and_days(text, interval) -> None:
    args = parser().parse_args(["demo", "seed", "--rounds", "3", "--interval", text])
    assert (args.rounds, args.interval) == (3, interval)


def test_cli_interval_defaults_to_two_hours() -> None:
    args = parser().parse_args(["demo", "seed"])
    assert (args.rounds, args.interval, args.only_round) == (1, timedelta(hours=2), None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "'2' is not a duration like 30m, 2h or 1d"),
        ("1.5h", "'1.5h' is not a duration like 30m, 2h or 1d"),
        ("2w", "'2w' is not a duration like 30m, 2h or 1d"),
        ("0h", "'0h' is not a duration like 30m, 2h or 1d"),
        ("-2h", "'-2h' is not a duration like 30m, 2h or 1d"),
        ("5m", "must be at least 10m, not 5m"),
    ],
)
def test_cli_interval_rejects_anything_else_clearly(text, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["demo", "seed", f"--interval={text}"])
    assert exit_.value.code == 2
    assert f"argument --interval: {message}" in capsys.readouterr().err


def test_cli_only_round_must_be_one_of_the_rounds(tmp_path, capsys) -> None:
    args = parser().parse_args(
        ["demo", "seed", "--store", f"file://{tmp_path}", "--rounds", "2", "--only-round", "2"]
    )
    with pytest.raises(SystemExit):
        args.handler(args)
    assert "--only-round must be 0..1 with --rounds 2" in capsys.readouterr().err
    assert list(open_store(f"file://{tmp_path}").list("")) == []


def test_cli_seeds_rounds_and_reports_them(tmp_path, capsys) -> None:
    argv = [
        "demo",
        "seed",
        "--store",
        f"file://{tmp_path}",
        "--miners",
        "4",
        "--now",
        "2026-12-03",
        "--rounds",
        "3",
        "--interval",
        "30m",
        "--json",
    ]
    args = parser().parse_args(argv)
    assert args.handler(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["interval"] == 1800 and doc["round_count"] == 3
    assert [r["at"] for r in doc["rounds"]] == [
        "2026-12-02T23:00:00+00:00",
        "2026-12-02T23:30:00+00:00",
        "2026-12-03T00:00:00+00:00",
    ]
    assert sorted({f["round"] for m in doc["miners"] for f in m["files"]}) == [0, 1, 2]
    assert [h for r in doc["rounds"] for h in r["joined"]] and [h for r in doc["rounds"] for h in r["left"]]
