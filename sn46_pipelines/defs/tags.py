"""Run tags the instance's run queue reads (``deploy/dagster.prod.yaml`` limits them), declared once.

A module of their own because both the jobs and the automation sensors put
them on runs, and neither should import the other to learn a string.
"""

from __future__ import annotations

#: A run that wants a GPU. The production run queue limits how many such runs
#: are in flight, and the Kubernetes and ECS launchers give them a GPU.
GPU_TAG = "sn46/gpu"
