"""Gateway fixtures: a real redis-server on loopback, moto S3, real sr25519 keys and a metagraph snapshot.

Keys and request builders live in :mod:`.helpers`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.helpers import GATEWAY, snapshot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no persistence), for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def metagraph_file(tmp_path: Path) -> Path:
    path = tmp_path / "metagraph.json"
    path.write_text(json.dumps(snapshot()))
    return path


@pytest.fixture
def s3_server() -> str:
    """Which S3 server the gateway signs for: moto here; modules that test the flows override it
    with both, since SeaweedFS enforces the POST policies and signatures as AWS does."""
    return "moto"


@pytest.fixture
def s3_endpoint(request: pytest.FixtureRequest, s3_server: str) -> str:
    return request.getfixturevalue(f"{s3_server}_endpoint")


@pytest.fixture
def gateway_bucket(request: pytest.FixtureRequest, s3_server: str) -> str:
    """A fresh bucket on :func:`s3_endpoint`."""
    return request.getfixturevalue("s3_bucket" if s3_server == "moto" else "seaweedfs_bucket")


@pytest.fixture
def gateway_env(
    gateway_bucket: str, s3_endpoint: str, redis_url: str, metagraph_file: Path, tmp_path: Path
) -> dict:
    """Variables of a gateway on S3 and Redis; tests add or change entries before building."""
    return {
        "SN46_DATA_STORE": f"s3://{gateway_bucket}",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "REDIS_URL": redis_url,
        "SN46_METAGRAPH_FILE": str(metagraph_file),
        "SN46_GATEWAY_HOTKEY": GATEWAY.ss58_address,
        "SN46_GATEWAY_STATE_DB": str(tmp_path / "state.sqlite3"),
    }


class GatewayServer:
    """The app under a real uvicorn server on a loopback port, in a thread, with an httpx client."""

    def __init__(self, gateway: Any) -> None:
        import httpx
        import uvicorn

        from sn46_pipelines.gateway.app import create_app

        self.gateway = gateway
        port = free_port()
        config = uvicorn.Config(create_app(gateway), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def __getattr__(self, name: str) -> Any:  # get/post/... go to the HTTP client
        return getattr(self.http, name)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def make_client(gateway_env: dict) -> Iterator[Callable[..., GatewayServer]]:
    """Serve a gateway configured by ``gateway_env`` plus overrides; the metagraph is loaded first."""
    from sn46_pipelines.gateway.service import build_gateway
    from sn46_pipelines.gateway.settings import load_gateway_settings

    servers: list[GatewayServer] = []

    def build(load_metagraph: bool = True, **overrides: str) -> GatewayServer:
        gateway = build_gateway(load_gateway_settings("local", {**gateway_env, **overrides}))
        if load_metagraph:
            assert gateway.metagraph.refresh()
        servers.append(GatewayServer(gateway))
        return servers[-1]

    yield build
    for server in servers:
        server.close()


@pytest.fixture
def client(make_client):
    return make_client()
