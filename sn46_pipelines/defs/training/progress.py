"""Training progress as one line, read from a run's event log: what ``sn46 pipeline run`` can show.

The training process logs one line per epoch through Pipes
(:meth:`~sn46_pipelines.pricemodel.train.EpochReport.line`); Dagster stores
each as a log event of the run, so the UI's run view shows them as they
arrive and any process holding the instance can read the newest one.
"""

from __future__ import annotations

import re

import dagster as dg

#: How a training epoch's line starts (``epoch 12/40: loss 0.1032, ...``).
EPOCH_LINE = re.compile(r"\bepoch \d+/\d+: loss ")


def training_progress(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The newest epoch line training logged in run ``run_id``, or None before the first epoch ends."""
    for record in reversed(instance.all_logs(run_id)):
        message = record.user_message or ""
        match = EPOCH_LINE.search(message)
        if match:
            return message[match.start() :].strip()
    return None
