"""Fixtures of the listings tests."""

from __future__ import annotations

import pytest
from listings_helpers import Uploads

from sn46_pipelines.objectstore import ObjectStore


@pytest.fixture
def uploads(store: ObjectStore) -> Uploads:
    return Uploads(store)


@pytest.fixture
def folder_store(tmp_path) -> ObjectStore:
    """The folder backend alone, for row-rule tests where the backend plays no part."""
    from sn46_pipelines.objectstore import open_store

    return open_store(f"file://{tmp_path}")


@pytest.fixture
def folder_uploads(folder_store: ObjectStore) -> Uploads:
    return Uploads(folder_store)
