"""Which allocator Arrow uses in the processes that run the pipeline.

Every Dagster run is a fresh process, and a miner's ingest run reads, merges
and writes a few thousand rows: less work than Arrow's default allocator
(mimalloc) can spend on its first use of fresh pages and on returning freed
ones to the kernel. In fresh processes, one miner's ingest after a week of
two-hourly rounds took 0.039 s with jemalloc against 0.067 s with mimalloc
(medians of 7), and varied half as much; the 2,000,000-row curate benchmark
is as fast with either, in less memory with jemalloc (docs/performance.md,
"Steady state").

Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, at a process's first
allocation (importing this package allocates), so the choice has to be in
the environment a process starts with: ``sn46 pipeline ui`` and
``sn46 pipeline run`` hand it to ``dagster dev`` and the daemon, whose code
servers and run workers inherit it, and the container image sets it. An
operator's own setting (``mimalloc``, ``jemalloc`` or ``system``) always wins.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

#: The environment variable Arrow reads its default allocator from.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def pipeline_allocator() -> str:
    """``jemalloc``, or ``system`` where pyarrow was built without it (it is in the Linux wheels)."""
    try:
        pa.jemalloc_memory_pool()  # looks the pool up; this process's default stays as it is
    except NotImplementedError:  # pyarrow.lib.ArrowNotImplementedError
        return "system"
    return "jemalloc"


def with_pipeline_allocator(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a process the pipeline starts: Arrow's allocator chosen, unless already set."""
    if environ.get(ARROW_POOL_VARIABLE):
        return dict(environ)
    return {**environ, ARROW_POOL_VARIABLE: pipeline_allocator()}
