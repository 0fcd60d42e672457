"""Dagster resources: thin handles on the libraries, configured per environment."""

from .modelstore import ModelStoreResource
from .stores import DataStoreResource

__all__ = ["DataStoreResource", "ModelStoreResource"]
