"""Operations fixtures: an environment whose model store is the test's store, a Dagster instance, a chain.

Jobs run on a real Dagster instance against real stores on both backends.
The instance keeps runs and events in memory (``DagsterInstance.ephemeral``,
what ``materialize`` uses by default): runs are several times faster than on
sqlite files on this shared machine. The pool test, which needs instance
concurrency limits and a second thread, makes its own ``instance_for_test``.
The ``model_store`` resource is configured the production way, from the
environment file, so the jobs' run-time defaults are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from sn46_pipelines.modelstore import ModelStore
from tests.defs.modelstore.operations_helpers import ENV_GC, VERSIONS


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    # tempdir: without it the instance writes compute logs to ./storage in the working tree.
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster")) as instance:
        yield instance


@pytest.fixture
def replica_url(store_url: str, tmp_path: Path) -> str:
    """An empty replica next to the primary, on the same backend."""
    if store_url.startswith("file://"):
        (tmp_path / "replica").mkdir()
    return store_url.rsplit("/", 1)[0] + "/replica"


@pytest.fixture
def environment(store_url: str, replica_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``local`` environment naming the test's stores and :data:`ENV_GC`, chosen by ``SN46_CONFIG_DIR``."""
    folder = tmp_path / "config"
    folder.mkdir()
    settings = {
        "data_store": f"file://{tmp_path}/data",
        "model_store": store_url,
        "replica_store": replica_url,
        "gc": ENV_GC,
    }
    (folder / "local.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("SN46_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[[int], Path]:
    """A small checkpoint folder: ``model.pt`` differs per seed, the feature config is shared."""

    def make(seed: int) -> Path:
        folder = tmp_path / f"ckpt-{seed}"
        folder.mkdir()
        (folder / "model.pt").write_bytes(f"weights-{seed}".encode() * 100)
        (folder / "feature_config.json").write_text('{"features": ["beds", "baths"]}')
        return folder

    return make


@pytest.fixture
def chain(environment: Path, store_url: str, make_checkpoint: Callable[[int], Path]) -> ModelStore:
    """The environment's model store holding :data:`VERSIONS` versions, v0 to v7."""
    store = ModelStore.open(store_url)
    for seed in range(VERSIONS):
        store.commit(make_checkpoint(seed), message=f"epoch {seed}")
    return store
