"""Runs of the listings assets on a test instance, as the daemon would launch them."""

from __future__ import annotations

import dagster as dg

from sn46_pipelines.defs.listings.aggregates import listing_aggregates, validator_views
from sn46_pipelines.defs.resources import DataStoreResource


def build_aggregates(instance: dg.DagsterInstance, store) -> dg.ExecuteInProcessResult:
    """One run of ``listing_aggregates`` and ``validator_views`` over ``store``; failures are returned."""
    return dg.materialize(
        [listing_aggregates, validator_views],
        instance=instance,
        resources={"data_store": DataStoreResource(url=store.url)},
        raise_on_error=False,
    )
