"""Price-model fixtures: demo listings generated in memory, and one small trained model per session."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.pricemodel.pricemodel_helpers import TINY, demo_listings, fit_hgb, regional


@pytest.fixture(scope="session")
def listings() -> pa.Table:
    return demo_listings()


@pytest.fixture(scope="session")
def trained(listings):
    """One model trained with :data:`TINY` settings, shared by the tests that only read it."""
    from sn46_pipelines.pricemodel.train import TrainConfig, train

    return train(listings, TrainConfig(**TINY))


@pytest.fixture(scope="session")
def checkpoint_dir(trained, tmp_path_factory) -> Path:
    from sn46_pipelines.pricemodel.checkpoint import write_checkpoint

    return write_checkpoint(trained, tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def regional_listings() -> pa.Table:
    return regional()


@pytest.fixture(scope="session")
def regional_model(regional_listings):
    """The default training config on the regional set (a few seconds on one core)."""
    from sn46_pipelines.pricemodel.train import train

    return train(regional_listings)


@pytest.fixture(scope="session")
def multi_city_model(listings):
    """The default training config on the multi-city set."""
    from sn46_pipelines.pricemodel.train import train

    return train(listings)


@pytest.fixture(scope="session")
def regional_hgb(regional_model, regional_listings):
    return fit_hgb(regional_model, regional_listings)


@pytest.fixture(scope="session")
def multi_city_hgb(multi_city_model, listings):
    return fit_hgb(multi_city_model, listings)
