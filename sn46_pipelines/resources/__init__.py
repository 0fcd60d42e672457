"""Dagster resources: thin handles on the libraries, configured per environment."""

from .modelstore import ModelStoreResource
from .stores import DataStoreResource
from .training import TrainingLauncher

__all__ = ["DataStoreResource", "ModelStoreResource", "TrainingLauncher"]
