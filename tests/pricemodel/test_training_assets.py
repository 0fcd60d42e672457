"""``price_model`` through Dagster Pipes on a real instance, its blocking gate checks and
``inference_pin``."""

from __future__ import annotations

import io

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sn46_pipelines.defs.resources import DataStoreResource, ModelStoreResource
from sn46_pipelines.defs.training import TrainingLauncher, inference_pin, price_model
from sn46_pipelines.defs.training.progress import training_progress
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.modelstore import ModelStore, read_pin
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.pipeline import _training_line
from sn46_pipelines.pricemodel.layout import FILES
from sn46_pipelines.pricemodel.pipes_train import CHECK_NAMES

#: Half the default step budget: still well inside SN46's targets on the demo data.
QUICK = {"steps": 1500, "hidden": 64}


@pytest.fixture
def pinned_env(tmp_path, monkeypatch):
    """An environment whose inference pin ``prod`` is in pinned mode (the shipped local one tracks)."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "local.yaml").write_text(
        f"data_store: file://{tmp_path}/unused-data\nmodel_store: file://{tmp_path}/unused-models\n"
        "inference:\n  pin: prod\n  mode: pinned\n"
    )
    monkeypatch.setenv("SN46_CONFIG_DIR", str(config))


def demo_data(root, *, one_price_per_zip: bool = False):
    """The demo upload area, ingested and aggregated: what ``price_model`` reads in ``sn46 pipeline run``.

    With ``one_price_per_zip`` every uploaded listing is priced by its zip code alone, so the zip-median
    baseline is exact (MAPE 0) and no model can beat it: a check failure that does not hinge on luck.
    """
    root.mkdir()
    store = open_store(f"file://{root}")
    seed_demo(store, miners=6, seed=0)
    if one_price_per_zip:
        for info in store.list("data/"):
            if info.key.endswith(".parquet"):
                _price_by_zip(store, info.key)
    for prefix in store.list_prefixes("data/"):
        ingest_hotkey(store, prefix.removeprefix("data/hotkey=").rstrip("/"))
    write_aggregates(store, aggregate_store(store))
    return store


def _price_by_zip(store, key: str) -> None:
    try:
        table = pq.read_table(io.BytesIO(store.get(key)))
    except pa.ArrowInvalid:
        return  # a planted unreadable file: curation rejects it either way
    if {"price", "zip_code"} - set(table.column_names):
        return
    field = table.schema.field("price")
    prices = [
        400_000.0 + 1_000.0 * int(z[-2:]) if z and z.isdigit() else None
        for z in table.column("zip_code").to_pylist()
    ]
    store.put(
        key,
        _parquet(
            table.set_column(table.schema.get_field_index("price"), field, pa.array(prices, field.type))
        ),
    )


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_train_then_deploy_and_a_worse_model_is_blocked(pinned_env, tmp_path):
    demo, flat = demo_data(tmp_path / "demo"), demo_data(tmp_path / "flat", one_price_per_zip=True)
    (tmp_path / "models").mkdir()
    models = ModelStore.open(f"file://{tmp_path / 'models'}")
    assets = [price_model, inference_pin]

    def run(selection, data=demo, pin_config=None):
        resources = {
            "data_store": DataStoreResource(url=data.url),
            "model_store": ModelStoreResource(url=models.url),
            "training_launcher": TrainingLauncher(),
        }
        config = {"price_model": {"config": QUICK}, "inference_pin": {"config": pin_config or {}}}
        ops = {name: value for name, value in config.items() if name in {a.key.path[-1] for a in selection}}
        return dg.materialize(
            assets,
            selection=selection,
            instance=instance,
            resources=resources,
            run_config={"ops": ops},
            raise_on_error=False,
        )

    with dg.instance_for_test() as instance:
        good = run(assets)
        assert good.success
        (materialization,) = good.asset_materializations_for_node("price_model")
        meta = {k: v.value for k, v in materialization.metadata.items()}
        record = models.get(meta["version_id"])
        assert sorted(record.manifest) == sorted(FILES)
        # The UI shows metrics rounded to 4 places; the store keeps them whole.
        assert meta["val_mape"] == round(record.metadata["metrics"]["mape"], 4) < 0.5 * meta["baseline_mape"]
        assert {"val_mae", "val_r2", "val_within_10pct", "data_version", "code_version"} <= set(meta)
        checks = {c.check_name: c for c in good.get_asset_check_evaluations()}
        assert sorted(checks) == sorted(CHECK_NAMES) and all(c.passed for c in checks.values())
        assert checks["sn46_mape"].metadata["limit"].value == 0.15  # the environment's threshold, in the UI
        assert record.metadata["gate"]["passed"] and meta["gate_passed"]
        assert read_pin(models, "prod").counter == record.counter
        # Each epoch's loss and early-stopping MAPE reached the run's log through Pipes while it trained.
        epochs = [
            r.user_message for r in instance.all_logs(good.run_id) if "early-stopping MAPE" in r.user_message
        ]
        assert len(epochs) == record.metadata["training"]["epochs"] >= 2
        assert training_progress(instance, good.run_id) == epochs[-1][epochs[-1].index("epoch ") :]
        # ...and `sn46 pipeline run`'s progress line shows the newest while the run is in flight.
        records = instance.get_run_records(dg.RunsFilter(run_ids=[good.run_id]))
        assert _training_line(instance, records) == f"; training: {training_progress(instance, good.run_id)}"

        bad = run(assets, data=flat)
        assert not bad.success  # the blocking checks failed the step...
        checks = {c.check_name: c for c in bad.get_asset_check_evaluations()}
        check = checks["beats_zip_median_baseline"]
        assert not check.passed and check.metadata["baseline_mape"].value == 0.0
        assert checks["onnx_constraints"].passed and checks["onnxruntime_matches_torch"].passed
        # Scored against the pinned model on its own validation rows, recorded for the deployment decision.
        assert models.head().metadata["compared_with"]["version_id"] == record.version_id
        assert models.head().counter == record.counter + 1  # ...after the checkpoint was committed,
        assert not models.head().metadata["beats_baseline"]
        assert read_pin(models, "prod").counter == record.counter  # but never deployed

        deploy = run([inference_pin])  # deploy_job alone picks the latest (failed) model and refuses it
        assert deploy.success
        (decision,) = deploy.asset_materializations_for_node("inference_pin")
        assert decision.metadata["moved"].value is False
        assert read_pin(models, "prod").counter == record.counter

        forced = run([inference_pin], pin_config={"force": True})
        assert forced.success and read_pin(models, "prod").counter == record.counter + 1


def test_a_failed_training_process_fails_the_step_with_its_own_cause(tmp_path):
    """The Pipes client only knows "exit code 1"; the step's failure names the child's exception."""
    (tmp_path / "models").mkdir()
    data = open_store(f"file://{tmp_path / 'data'}")
    resources = {
        "data_store": DataStoreResource(url=data.url),
        "model_store": ModelStoreResource(url=f"file://{tmp_path / 'models'}"),
        "training_launcher": TrainingLauncher(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [price_model],
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config={"ops": {"price_model": {"config": {"epochs": -1}}}},
        )
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        error = failure.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        assert "training failed: ValueError: epochs must be 0 or more, not -1" in error.message


def test_with_no_listings_training_is_a_skipped_materialization_and_the_pin_stays(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    empty = open_store(f"file://{tmp_path / 'data'}")
    write_aggregates(empty, aggregate_store(empty))  # aggregated, but no miner has a listing yet
    resources = {
        "data_store": DataStoreResource(url=empty.url),
        "model_store": ModelStoreResource(url=f"file://{tmp_path / 'models'}"),
        "training_launcher": TrainingLauncher(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [price_model, inference_pin], instance=instance, resources=resources, raise_on_error=False
        )
        assert result.success
        (trained,) = result.asset_materializations_for_node("price_model")
        assert trained.metadata["skipped"].value.startswith("too few listings to train: 0 train")
        assert "version_id" not in trained.metadata
        checks = result.get_asset_check_evaluations()
        assert sorted(c.check_name for c in checks) == sorted(CHECK_NAMES)
        assert all(not c.passed and c.severity == dg.AssetCheckSeverity.WARN for c in checks)
        (pin,) = result.asset_materializations_for_node("inference_pin")
        assert pin.metadata["moved"].value is False
        assert pin.metadata["reason"].value.startswith("price_model trained no model: too few listings")
    assert ModelStore.open(f"file://{tmp_path / 'models'}").head() is None


def test_an_ingest_after_the_aggregates_makes_training_skip_until_they_run_again(tmp_path):
    """Under the daemon a round's ingest can land between the aggregates and training: training then
    skips (a successful materialization that says why, the pin stays) instead of failing the run."""
    root, models = tmp_path / "data", tmp_path / "models"
    root.mkdir(), models.mkdir()
    store = open_store(f"file://{root}")
    seed_demo(store, miners=6, seed=0, rounds=2, only_round=0)
    hotkeys = [p.removeprefix("data/hotkey=").rstrip("/") for p in store.list_prefixes("data/")]
    for hotkey in hotkeys:
        ingest_hotkey(store, hotkey)
    write_aggregates(store, aggregate_store(store))
    seed_demo(store, miners=6, seed=0, rounds=2, only_round=1)  # the next round lands
    changed = [hotkey for hotkey in hotkeys if ingest_hotkey(store, hotkey).new_files]
    assert changed
    resources = {
        "data_store": DataStoreResource(url=store.url),
        "model_store": ModelStoreResource(url=f"file://{models}"),
        "training_launcher": TrainingLauncher(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [price_model, inference_pin], instance=instance, resources=resources, raise_on_error=False
        )
        assert result.success
        (trained,) = result.asset_materializations_for_node("price_model")
        assert "changed after listing_aggregates ran" in trained.metadata["skipped"].value
        (pin,) = result.asset_materializations_for_node("inference_pin")
        assert pin.metadata["moved"].value is False
    assert ModelStore.open(f"file://{models}").head() is None
