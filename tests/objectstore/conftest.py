"""The object-store contract runs on every backend: a folder, moto and SeaweedFS."""

from __future__ import annotations

import pytest


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url
