"""Fixtures of the listings tests."""

from __future__ import annotations

import pytest
from listings_helpers import Uploads

from sn46_pipelines.objectstore import ObjectStore


@pytest.fixture
def uploads(store: ObjectStore) -> Uploads:
    return Uploads(store)
