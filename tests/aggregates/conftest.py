"""Fixtures of the aggregates tests: a folder store (the S3 path is covered where it matters)."""

from __future__ import annotations

import pytest

from sn46_pipelines.objectstore import open_store


@pytest.fixture
def folder_store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    return open_store(f"file://{root}")
