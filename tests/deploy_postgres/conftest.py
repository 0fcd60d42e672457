"""Fixtures: a real PostgreSQL 15 server on loopback, and Dagster homes using ``deploy/dagster.prod.yaml``.

The server is started once per session from a fresh cluster and removed at
the end. Each production home gets its own database and login role, created
the way docs/dagster-instance.md tells an operator to, and its own compute-log
bucket on the moto S3 server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postgres_server import PostgresServer, PostgresUnavailable
from prod_home_helpers import ProdHome, make_prod_home


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 (a free port) from a fresh temporary cluster; removed at the end."""
    try:
        server = PostgresServer.create()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def prod_home(postgres, moto_endpoint, tmp_path, monkeypatch) -> ProdHome:
    """A production home with its own database, its variables set for this test."""
    prod = make_prod_home(postgres, moto_endpoint, tmp_path)
    for name, value in prod.env.items():
        monkeypatch.setenv(name, value)
    return prod
