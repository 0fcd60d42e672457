"""Per-environment numbers of the bucket plan.

They live here, keyed by environment name, until ``environments/*.yaml`` grows an
``infra:`` section; the command-line flags of ``sn46 infra bucket`` override
the origins and the KMS key.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Browser origins of a developer's machine (a Vite or Next.js dev server) allowed to upload in dev and test.
DEV_ORIGINS = ("http://localhost:3000", "http://localhost:5173")


@dataclass(frozen=True, slots=True)
class InfraDefaults:
    """What the bucket plan of one environment uses unless told otherwise."""

    #: Parts of multipart uploads that never completed are billed until aborted.
    abort_multipart_days: int = 7
    #: Curated listings and per-hotkey quarantine files move to a cheaper class after this many days.
    curated_transition_days: int = 30
    #: A class that still serves reads at once: INTELLIGENT_TIERING charges no retrieval fee, which
    #: matters because every aggregates run reads every committed curated file.
    curated_storage_class: str = "INTELLIGENT_TIERING"
    #: Aggregate tables a blocking check rejected (``aggregates/rejected/``) are kept this long.
    rejected_aggregates_days: int = 30
    #: Overwritten and deleted versions (versioned buckets) are kept this long: the undo window for GC
    #: deletions, pin moves and manifest rewrites.
    noncurrent_days: int = 30
    #: Web origins allowed to upload from a browser with a presigned URL; empty: no CORS rule.
    cors_origins: tuple[str, ...] = ()


DEFAULTS: dict[str, InfraDefaults] = {
    "local": InfraDefaults(noncurrent_days=7, rejected_aggregates_days=14, cors_origins=DEV_ORIGINS),
    "dev": InfraDefaults(noncurrent_days=7, rejected_aggregates_days=14, cors_origins=DEV_ORIGINS),
    "test": InfraDefaults(noncurrent_days=7, rejected_aggregates_days=14, cors_origins=DEV_ORIGINS),
    "staging": InfraDefaults(noncurrent_days=30),
    "prod": InfraDefaults(noncurrent_days=90, rejected_aggregates_days=90),
}
