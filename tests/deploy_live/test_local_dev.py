"""The documented local command, ``sn46 pipeline ui``, running by itself on the sqlite instance.

Nobody presses a button: demo uploads land in the local data store, and the
test watches the UI's GraphQL until they are in the views. Ctrl-C then stops
the whole process tree (webserver, daemon, code server, run workers).
"""

from __future__ import annotations

import pytest
from live import ROUND_LIMIT, START_LIMIT, group_alive, local_ui, runs, stop_group, views_include_uploads
from live_dagster import ingest_counts, wait_for

from sn46_pipelines.config import load_settings
from sn46_pipelines.demo.seed import seed_demo

pytestmark = pytest.mark.slow


def test_uploads_become_views_under_sn46_pipeline_ui(tmp_path):
    store = load_settings("local", {"SN46_HOME": str(tmp_path)}).open_data_store()
    with local_ui(tmp_path) as (port, ui, log):
        report = seed_demo(store, miners=3, validators=1, seed=5)
        wait_for(
            views_include_uploads(port, store, [m.hotkey for m in report.miners]),
            "the uploads ingested and in the views",
            {"sn46 pipeline ui": ui},
            log,
            ROUND_LIMIT,
        )
        assert not runs(port, "FAILURE", "CANCELED")
        assert ingest_counts(port) == {miner.hotkey: len(miner.files) for miner in report.miners}
        stop_group(ui)
        # The webserver, daemon and code server got the Ctrl-C too: none of them stays behind.
        wait_for(
            lambda: not group_alive(ui), "every process of the UI exits after Ctrl-C", {}, log, START_LIMIT
        )
