"""Fixtures: Dagster homes using ``deploy/dagster.prod.yaml`` on the session's PostgreSQL server.

Each production home gets its own database and login role, created the way
docs/dagster-instance.md tells an operator to, and its own compute-log bucket
on the moto S3 server. The server itself is ``postgres`` in tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.deploy.postgres.prod_home_helpers import ProdHome, make_prod_home


@pytest.fixture
def prod_home(postgres, moto_endpoint, tmp_path, monkeypatch) -> ProdHome:
    """A production home with its own database, its variables set for this test."""
    prod = make_prod_home(postgres, moto_endpoint, tmp_path)
    for name, value in prod.env.items():
        monkeypatch.setenv(name, value)
    return prod
