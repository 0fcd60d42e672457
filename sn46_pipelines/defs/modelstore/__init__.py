"""The model-store domain: the store as an external asset, its checks, and the jobs that keep it healthy."""

import dagster as dg

from ...config import Settings
from .jobs import (
    CHAIN_CHECK,
    GC_POOL,
    GC_STORE_TAG,
    REPLICA_CHECK,
    RPO_SECONDS,
    GCConfig,
    ReplicationConfig,
    VerifyConfig,
    gc_job,
    model_store_replication,
    model_store_verify,
    replication_check_job,
    schedules,
    verify_chain_job,
)
from .observations import model_store

__all__ = [
    "CHAIN_CHECK",
    "GC_POOL",
    "GC_STORE_TAG",
    "REPLICA_CHECK",
    "RPO_SECONDS",
    "GCConfig",
    "ReplicationConfig",
    "VerifyConfig",
    "build_defs",
    "model_store",
]


def build_defs(settings: Settings) -> dg.Definitions:
    """The external asset, its verification and replica checks, GC, and the three schedules."""
    gc = gc_job(settings)
    return dg.Definitions(
        assets=[model_store],
        asset_checks=[model_store_verify, model_store_replication],
        jobs=[gc, verify_chain_job, replication_check_job],
        schedules=schedules(settings, gc),
    )
