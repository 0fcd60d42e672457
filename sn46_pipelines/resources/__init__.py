"""Dagster resources: thin handles on the libraries, configured per environment."""

from .stores import DataStoreResource

__all__ = ["DataStoreResource"]
