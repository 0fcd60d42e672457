"""The automation conditions, evaluated by Dagster's own evaluator on a real instance, tick by tick.

Materializations are reported to the instance as a run would leave them
(``report_runless_asset_event``); in-flight runs are real queued runs. Each
test steps evaluation time forward, as the automation sensor's ticks would.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sn46_pipelines.config import AutomationSettings
from sn46_pipelines.defs.automation import (
    AGGREGATES,
    INFERENCE_PIN,
    PRICE_MODEL,
    VIEWS,
    batched_eager,
    eager_after_checks,
    training_cadence,
)

HOTKEYS = [f"hk{i:02d}" for i in range(64)]
START = datetime(2026, 12, 3, 8, 0, 30, tzinfo=UTC)
SETTINGS = AutomationSettings(
    aggregates_min_interval_seconds=300,
    aggregates_deadline_cron="*/10 * * * *",
    training_cron="0 */4 * * *",
    training_min_new_rows=1000,
)
partitions = dg.DynamicPartitionsDefinition(name="miner_hotkeys")


def build(settings: AutomationSettings = SETTINGS) -> list[dg.AssetsDefinition]:
    """The project's asset graph in miniature, with the project's conditions and check names."""

    @dg.asset(partitions_def=partitions)
    def miner_listings(): ...

    @dg.asset(
        deps=[miner_listings],
        automation_condition=batched_eager(settings),
        check_specs=[dg.AssetCheckSpec("scores_in_range", asset="listing_aggregates", blocking=True)],
    )
    def listing_aggregates(): ...

    @dg.asset(deps=[listing_aggregates], automation_condition=eager_after_checks())
    def validator_views(): ...

    @dg.asset(deps=[listing_aggregates], automation_condition=training_cadence(settings, AGGREGATES))
    def price_model(): ...

    @dg.asset(deps=[price_model], automation_condition=eager_after_checks())
    def inference_pin(): ...

    return [miner_listings, listing_aggregates, validator_views, price_model, inference_pin]


class Ticks:
    """Successive evaluations on one instance, carrying the cursor as the sensor does."""

    def __init__(self, instance: dg.DagsterInstance, assets: list[dg.AssetsDefinition]) -> None:
        self.instance, self.assets, self.cursor, self.now = instance, assets, None, START

    def __call__(self, after: timedelta = timedelta(seconds=30)) -> dict[dg.AssetKey, int]:
        self.now += after
        result = dg.evaluate_automation_conditions(
            defs=self.assets, instance=self.instance, cursor=self.cursor, evaluation_time=self.now
        )
        self.cursor = result.cursor
        return {
            key: result.get_num_requested(key)
            for key in (AGGREGATES, VIEWS, PRICE_MODEL, INFERENCE_PIN)
            if result.get_num_requested(key)
        }


def materialize(instance: dg.DagsterInstance, key: str, partition: str | None = None, **metadata) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata)
    )


def check(instance: dg.DagsterInstance, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=AGGREGATES, check_name="scores_in_range", passed=passed)
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("miner_hotkeys", HOTKEYS)
        yield instance


def in_flight(instance: dg.DagsterInstance, assets, hotkey: str) -> dg.DagsterRun:
    """An ingest run of one partition in flight."""
    job = dg.Definitions(assets=assets).resolve_implicit_global_asset_job_def()
    return instance.create_run_for_job(
        job,
        asset_selection=frozenset({dg.AssetKey("miner_listings")}),
        tags={"dagster/partition": hotkey},
        status=dg.DagsterRunStatus.STARTED,
    )


def test_a_round_of_64_ingests_asks_for_one_aggregates_run(instance):
    assets = build()
    tick = Ticks(instance, assets)
    assert tick() == {}  # nothing ingested yet
    runs = [in_flight(instance, assets, hk) for hk in HOTKEYS]
    requested = []
    for i, (hotkey, run) in enumerate(zip(HOTKEYS, runs, strict=True)):
        materialize(instance, "miner_listings", hotkey)
        instance.report_run_canceled(run)  # the run is over; only runs in flight hold the aggregates
        if i % 8 == 7:  # the automation sensor ticks while the round lands, 8 ingests at a time
            requested.append(tick(timedelta(seconds=20)).get(AGGREGATES, 0))
    requested.append(tick().get(AGGREGATES, 0))
    assert requested == [0] * 7 + [1, 0]  # once, on the first tick after the round's last ingest


def test_in_flight_ingests_hold_the_aggregates_back_only_until_the_deadline(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "miner_listings", HOTKEYS[0])
    in_flight(instance, assets, HOTKEYS[1])  # never finishes
    assert AGGREGATES not in tick()
    assert AGGREGATES not in tick(timedelta(minutes=2))
    assert tick(timedelta(minutes=9)).get(AGGREGATES) == 1  # the */10 tick passed: the scores refresh


def test_the_throttle_spaces_rounds_by_the_minimum_interval(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "miner_listings", HOTKEYS[0])
    assert tick().get(AGGREGATES) == 1
    materialize(instance, "listing_aggregates", rows_accepted=10)
    materialize(instance, "miner_listings", HOTKEYS[1])
    assert AGGREGATES not in tick(timedelta(seconds=60))  # 90 s after the last request
    assert tick(timedelta(seconds=240)).get(AGGREGATES) == 1  # 330 s after it


def test_views_follow_aggregates_only_when_its_blocking_checks_passed(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "listing_aggregates", rows_accepted=10)
    check(instance, passed=False)
    assert VIEWS not in tick()
    materialize(instance, "listing_aggregates", rows_accepted=20)
    check(instance, passed=True)
    assert tick().get(VIEWS) == 1


def test_training_waits_for_its_cadence_or_enough_new_rows(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "listing_aggregates", rows_accepted=400)
    check(instance, passed=True)
    assert PRICE_MODEL not in tick()  # 400 new rows, below 1000, and no 4-hour tick yet
    materialize(instance, "listing_aggregates", rows_accepted=1500)
    check(instance, passed=True)
    assert tick().get(PRICE_MODEL) == 1  # 1500 rows more than the model (never trained) used
    materialize(instance, "price_model", eligible_rows=1500)
    materialize(instance, "listing_aggregates", rows_accepted=1600)
    check(instance, passed=True)
    assert PRICE_MODEL not in tick()
    assert tick(timedelta(hours=4)).get(PRICE_MODEL) == 1  # the cadence: 12:00 passed, data changed


def test_a_failed_training_is_not_asked_for_again_until_the_data_changes(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "listing_aggregates", rows_accepted=5000)
    check(instance, passed=True)
    assert tick().get(PRICE_MODEL) == 1
    # The run failed: price_model never materialized. No new aggregates: no retry loop.
    assert PRICE_MODEL not in tick()
    assert PRICE_MODEL not in tick(timedelta(hours=4))


def test_the_pin_moves_only_after_a_model_whose_checks_passed(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "price_model", version_id="v0000000001")
    assert tick().get(INFERENCE_PIN) == 1


def test_an_ingest_landing_right_after_the_request_asks_for_the_next_run(instance):
    assets = build(AutomationSettings(aggregates_min_interval_seconds=0))
    tick = Ticks(instance, assets)
    tick()
    materialize(instance, "miner_listings", HOTKEYS[0])
    assert tick().get(AGGREGATES) == 1
    materialize(instance, "miner_listings", HOTKEYS[1])  # landed after the run read its inputs
    materialize(instance, "listing_aggregates", rows_accepted=10)
    assert tick().get(AGGREGATES) == 1
    assert AGGREGATES not in tick()  # and nothing more once that one is handled


def test_a_failed_ingest_of_one_miner_does_not_hold_the_others_scores(instance):
    assets = build()
    tick = Ticks(instance, assets)
    tick()
    failed = in_flight(instance, assets, HOTKEYS[0])
    for hotkey in HOTKEYS[1:4]:
        materialize(instance, "miner_listings", hotkey)
    assert AGGREGATES not in tick()  # the first miner's run is still going
    instance.report_run_failed(failed)  # it failed: its partition stays unmaterialized
    assert tick().get(AGGREGATES) == 1


def report_in_run(instance: dg.DagsterInstance, run: dg.DagsterRun, event=None) -> None:
    """``event`` (a materialization or a check evaluation) as ``run`` would log it; None: the run
    succeeded."""
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

    if isinstance(event, dg.AssetMaterialization):
        kind, data = DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(event)
    elif event is None:
        kind, data = DagsterEventType.RUN_SUCCESS, None
    else:
        kind, data = DagsterEventType.ASSET_CHECK_EVALUATION, event
    instance.report_dagster_event(
        DagsterEvent(kind.value, job_name=run.job_name, event_specific_data=data), run_id=run.run_id
    )


def test_views_still_follow_aggregates_that_land_beside_their_own_build(instance):
    """The views' own materialization and newer aggregates (checks still running) seen on one tick.

    Runless events share one run id, so Dagster would take every check as
    targeting the newest materialization; the aggregates here come from runs.
    """
    assets = build(AutomationSettings(aggregates_min_interval_seconds=0))
    job = dg.Definitions(assets=assets).resolve_implicit_global_asset_job_def()
    tick = Ticks(instance, assets)
    tick()
    passed = dg.AssetCheckEvaluation(asset_key=AGGREGATES, check_name="scores_in_range", passed=True)
    aggregates_run = functools.partial(
        instance.create_run_for_job,
        job,
        asset_selection=frozenset({AGGREGATES}),
        status=dg.DagsterRunStatus.STARTED,
    )
    first = aggregates_run()
    report_in_run(instance, first, dg.AssetMaterialization(AGGREGATES, metadata={"rows_accepted": 10}))
    report_in_run(instance, first, passed)
    report_in_run(instance, first)
    assert tick().get(VIEWS) == 1
    materialize(instance, "validator_views")  # that build finished...
    second = aggregates_run()
    report_in_run(instance, second, dg.AssetMaterialization(AGGREGATES, metadata={"rows_accepted": 20}))
    assert VIEWS not in tick()  # ...beside newer aggregates, whose checks have not run yet
    report_in_run(instance, second, passed)
    report_in_run(instance, second)
    assert tick().get(VIEWS) == 1  # the newer aggregates were not forgotten
