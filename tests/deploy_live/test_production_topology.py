"""The production topology running by itself, and surviving a daemon killed mid-ingest.

``dagster code-server start`` (gRPC), ``dagster-daemon run`` and
``dagster-webserver`` run as separate processes on a fresh PostgreSQL database
(``deploy/dagster.prod.yaml``); the data and model stores and the step logs are
on moto's S3 server. Nobody launches a run: uploads land in the bucket, and the
test only watches the webserver's GraphQL and reads the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from live import ProductionTopology, runs, views_include_uploads
from live_dagster import ingest_counts

from sn46_pipelines.config import load_settings
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.discovery import list_hotkey_uploads
from sn46_pipelines.listings.ingest import processed_files

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def test_uploads_become_views_by_themselves_and_survive_a_killed_daemon(production: ProductionTopology):
    port = production.web_port
    store = load_settings(environ=production.env).open_data_store()

    first = seed_demo(store, miners=4, validators=1, seed=3, now=NOW)
    production.wait_for(
        views_include_uploads(port, store, [m.hotkey for m in first.miners]),
        "the first round ingested and in the views",
    )

    # The same four miners upload new files two hours later, and two new miners join.
    second = seed_demo(store, miners=6, validators=1, seed=3, now=NOW + timedelta(hours=2))
    in_flight = production.wait_for(
        lambda: [r["runId"] for r in runs(port, "STARTING", "STARTED") if r["jobName"] == "ingest_job"],
        "ingest runs of the second round in flight",
    )
    production.kill("daemon")
    production.start("daemon")
    hotkeys = [m.hotkey for m in second.miners]
    production.wait_for(
        views_include_uploads(port, store, hotkeys),
        "every upload of the second round ingested and in the views",
    )

    succeeded = {r["runId"] for r in runs(port, "SUCCESS")}
    assert set(in_flight) <= succeeded  # the runs the daemon left behind finished on the code server
    assert not runs(port, "FAILURE", "CANCELED")
    files_processed = ingest_counts(port)
    assert set(files_processed) == set(hotkeys)
    for hotkey in hotkeys:
        uploads = {u.key for u in list_hotkey_uploads(store, hotkey)}
        assert processed_files(store, hotkey) == uploads, hotkey  # none missing
        assert files_processed[hotkey] == len(uploads), hotkey  # none processed twice
