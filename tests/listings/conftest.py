"""Fixtures of the listings tests."""

from __future__ import annotations

import pytest

from sn46_pipelines.objectstore import ObjectStore
from tests.listings.listings_helpers import Uploads


@pytest.fixture
def uploads(store: ObjectStore) -> Uploads:
    return Uploads(store)


@pytest.fixture
def folder_uploads(folder_store: ObjectStore) -> Uploads:
    return Uploads(folder_store)
