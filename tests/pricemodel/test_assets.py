"""``price_model`` through Dagster Pipes on a real instance, its blocking check, and ``inference_pin``."""

from __future__ import annotations

import dagster as dg
import pytest

from sn46_pipelines.assets.training import inference_pin, price_model
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.modelstore import ModelStore, read_pin
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.pricemodel.checkpoint import FILES
from sn46_pipelines.pricemodel.pipes_train import CHECK_NAME
from sn46_pipelines.resources import DataStoreResource, ModelStoreResource

QUICK = {"epochs": 6, "hidden": 32}
#: A learning rate this small leaves the network near its initial guess: worse than the zip median.
HOPELESS = {"epochs": 1, "hidden": 8, "learning_rate": 1e-7}


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


@pytest.fixture
def demo_store(tmp_path):
    """The demo upload area, ingested and aggregated: what ``price_model`` reads in ``sn46 pipeline run``."""
    (tmp_path / "data").mkdir()
    store = open_store(f"file://{tmp_path / 'data'}")
    seed_demo(store, miners=6, seed=0)
    for prefix in store.list_prefixes("data/"):
        ingest_hotkey(store, prefix.removeprefix("data/hotkey=").rstrip("/"))
    write_aggregates(store, aggregate_store(store))
    return store


def test_train_then_deploy_and_a_worse_model_is_blocked(pinned_env, demo_store, tmp_path):
    (tmp_path / "models").mkdir()
    models = ModelStore.open(f"file://{tmp_path / 'models'}")
    resources = {
        "data_store": DataStoreResource(url=demo_store.url),
        "model_store": ModelStoreResource(url=models.url),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }
    assets = [price_model, inference_pin]

    def run(selection, price_config=None, pin_config=None):
        config = {"price_model": {"config": price_config or QUICK}, "inference_pin": {"config": pin_config or {}}}
        ops = {name: value for name, value in config.items() if name in {a.key.path[-1] for a in selection}}
        return dg.materialize(assets, selection=selection, instance=instance, resources=resources,
                              run_config={"ops": ops}, raise_on_error=False)

    with dg.instance_for_test() as instance:
        good = run(assets)
        assert good.success
        (materialization,) = good.asset_materializations_for_node("price_model")
        meta = {k: v.value for k, v in materialization.metadata.items()}
        record = models.get(meta["version_id"])
        assert sorted(record.manifest) == sorted(FILES)
        assert meta["val_mape"] == record.metadata["metrics"]["mape"] < 0.5 * meta["baseline_mape"]
        assert {"val_mae", "val_r2", "val_within_10pct", "data_version", "code_version"} <= set(meta)
        (check,) = good.get_asset_check_evaluations()
        assert check.check_name == CHECK_NAME and check.passed
        assert read_pin(models, "prod").counter == record.counter

        bad = run(assets, price_config=HOPELESS)
        assert not bad.success  # the blocking check failed the step...
        (check,) = bad.get_asset_check_evaluations()
        assert not check.passed
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
