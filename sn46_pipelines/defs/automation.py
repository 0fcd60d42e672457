"""When the assets after ingest run by themselves: declarative automation conditions and their sensor.

The upload sensor launches one ``miner_listings`` run per miner with new
files; everything downstream is requested by Dagster's automation sensor
(``sn46_listings_automation`` and ``sn46_training_automation``, whose runs
carry the GPU tag) from the conditions below, evaluated every
``automation.interval_seconds``:

* ``listing_aggregates`` is *batched eager*: it runs once some partition of
  ``miner_listings`` has updated since its last request, no ingest of the
  round is still in flight, and ``aggregates_min_interval_seconds`` have passed
  since its last request. A round of 64 ingest runs thus causes one aggregates
  run. In-flight ingests hold it back only until the next tick of
  ``aggregates_deadline_cron`` after the round's first update (then a second
  run picks up the rest), so a steady trickle of uploads cannot starve the
  scores.
* ``validator_views`` is eager once the aggregates' blocking checks passed.
* ``price_model`` trains on its cadence (``training_cron``) when the
  aggregates changed since its last run, or as soon as the aggregates count
  ``training_min_new_rows`` more accepted rows than the model was trained on.
* ``inference_pin`` is eager after ``price_model``, when every gate check of
  the new model passed (its own gate then compares it with the pinned model).

Two conditions are plain Python (:class:`NotRequestedWithin`,
:class:`EnoughNewRows`), so the sensor evaluates them in the code server
(``use_user_code_server``), where they can read the instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from ..config import AutomationSettings
from .metadata import newest_metadata_int
from .tags import GPU_TAG


def sensor_status(settings: AutomationSettings) -> dg.DefaultSensorStatus:
    """The state the environment ships the upload and automation sensors in."""
    running = settings.sensors == "running"
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def schedule_status(settings: AutomationSettings) -> dg.DefaultScheduleStatus:
    """The state the environment ships the GC, verification and replica schedules in."""
    running = settings.schedules == "running"
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


class NotRequestedWithin(dg.AutomationCondition):
    """True unless the asset was requested less than ``seconds`` ago: a throttle for eager conditions.

    Built-in cron conditions throttle too, but only on the cron's ticks; this
    one lets the first update after a quiet period through at once and only
    holds back the updates that follow it. The time of the last request is
    kept in the condition's own cursor.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    @property
    def description(self) -> str:
        return f"not requested in the last {self.seconds:g} s"

    @property
    def name(self) -> str:
        return f"not_requested_within({self.seconds:g}s)"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        last = float(context.cursor) if context.cursor else None
        previous = context.get_previous_requested_subset(context.key)
        if previous is not None and not previous.is_empty and context.previous_evaluation_time:
            last = context.previous_evaluation_time.timestamp()
        elapsed = None if last is None else context.evaluation_time.timestamp() - last
        passed = elapsed is None or elapsed >= self.seconds
        return dg.AutomationResult(
            context,
            true_subset=context.candidate_subset if passed else context.get_empty_subset(),
            cursor=None if last is None else repr(last),
        )


class EnoughNewRows(dg.AutomationCondition):
    """True when the newest ``source`` materialization counts ``rows`` more than the asset last used.

    ``source_key`` names the row count in the source's metadata
    (``listing_aggregates``'s ``rows_accepted``), ``used_key`` the rows the
    target's newest materialization was built from (``price_model``'s
    ``eligible_rows``); a target never materialized counts as having used none.
    """

    def __init__(self, source: dg.AssetKey, rows: int, *, source_key: str, used_key: str) -> None:
        self.source, self.rows, self.source_key, self.used_key = source, int(rows), source_key, used_key

    @property
    def description(self) -> str:
        return f"{self.source.to_user_string()} has {self.rows}+ new {self.source_key} since the last run"

    @property
    def name(self) -> str:
        return f"enough_new_rows({self.rows})"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        available = newest_metadata_int(instance, self.source, self.source_key)
        used = newest_metadata_int(instance, context.key, self.used_key) or 0
        enough = available is not None and available - used >= self.rows
        return dg.AutomationResult(
            context, true_subset=context.candidate_subset if enough else context.get_empty_subset()
        )


def _updated_since_requested() -> dg.AutomationCondition:
    """Some dependency updated since this asset was last requested.

    ``since_last_handled()`` would forget two kinds of update: one that lands
    on the tick right after a request (``newly_requested`` is true then, and a
    reset wins over a set on the same tick) and one that lands while the run
    works (the asset's own materialization resets it). Either may be newer
    than what the run read, so here only a request with no update beside it
    resets.
    """
    updated = dg.AutomationCondition.any_deps_updated()
    return updated.since(dg.AutomationCondition.newly_requested() & ~updated)


def batched_eager(settings: AutomationSettings) -> dg.AutomationCondition:
    """``listing_aggregates``: one run per round of ingests (see the module's docstring)."""
    pending = _updated_since_requested()
    deadline = dg.AutomationCondition.cron_tick_passed(settings.aggregates_deadline_cron).since(
        pending.newly_true()
    )
    return (
        pending
        & NotRequestedWithin(settings.aggregates_min_interval_seconds)
        & (~dg.AutomationCondition.any_deps_in_progress() | deadline)
        & ~dg.AutomationCondition.in_progress()
    ).with_label("batched_eager")


def eager_after_checks() -> dg.AutomationCondition:
    """Eager, but only on upstream data whose blocking checks passed.

    Not ``eager()``: its ``since_last_handled()`` is reset by the asset's own
    materialization, and a new upstream update seen on that same tick (its
    checks still running) would be forgotten, leaving the views older than
    the aggregates for good. The update is remembered until a request.
    """
    return (
        _updated_since_requested()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("eager_after_checks")


def training_cadence(settings: AutomationSettings, source: dg.AssetKey) -> dg.AutomationCondition:
    """``price_model``: on its cron when the data changed, or early when enough rows are new.

    Both need an upstream update since the last request, so a training run
    that fails or skips is not requested again until the aggregates change.
    """
    cadence = dg.AutomationCondition.cron_tick_passed(settings.training_cron).since(
        dg.AutomationCondition.newly_requested()
    )
    early = EnoughNewRows(
        source, settings.training_min_new_rows, source_key="rows_accepted", used_key="eligible_rows"
    )
    return (
        (cadence | early)
        & _updated_since_requested()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("training_cadence")


#: The automation sensors: the listings domain's, and training's, whose runs carry the GPU tag.
LISTINGS_AUTOMATION = "sn46_listings_automation"
TRAINING_AUTOMATION = "sn46_training_automation"
AGGREGATES, VIEWS = dg.AssetKey("listing_aggregates"), dg.AssetKey("validator_views")
PRICE_MODEL, INFERENCE_PIN = dg.AssetKey("price_model"), dg.AssetKey("inference_pin")


def conditions(settings: AutomationSettings) -> dict[dg.AssetKey, dg.AutomationCondition]:
    """Each automated asset's condition; the partitioned ``miner_listings`` is the upload sensor's."""
    return {
        AGGREGATES: batched_eager(settings),
        VIEWS: eager_after_checks(),
        PRICE_MODEL: training_cadence(settings, AGGREGATES),
        INFERENCE_PIN: eager_after_checks(),
    }


def with_automation(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec], settings: AutomationSettings
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """``assets`` with the environment's automation conditions attached (the others unchanged)."""
    chosen = conditions(settings)

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = chosen.get(spec.key)
        return spec if condition is None else spec.replace_attributes(automation_condition=condition)

    return [
        asset.map_asset_specs(attach) if isinstance(asset, dg.AssetsDefinition) else attach(asset)
        for asset in assets
    ]


def automation_sensors(settings: AutomationSettings) -> list[dg.AutomationConditionSensorDefinition]:
    """The sensors that evaluate the conditions (in the code server: two of them are Python)."""

    def sensor(name: str, target: Sequence[dg.AssetKey], what: str, **run_tags: str):
        return dg.AutomationConditionSensorDefinition(
            name,
            target=dg.AssetSelection.assets(*target),
            run_tags=run_tags or None,
            default_status=sensor_status(settings),
            minimum_interval_seconds=settings.interval_seconds,
            use_user_code_server=True,
            description=f"Requests {what} from their automation conditions (defs/automation.py).",
        )

    return [
        sensor(LISTINGS_AUTOMATION, [AGGREGATES, VIEWS], "listing_aggregates and validator_views"),
        sensor(
            TRAINING_AUTOMATION,
            [PRICE_MODEL, INFERENCE_PIN],
            "price_model and inference_pin",
            **{GPU_TAG: "true"},
        ),
    ]
