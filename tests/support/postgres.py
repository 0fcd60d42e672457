"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, on loopback.

The server is Debian's own (``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin``),
listening on 127.0.0.1 only, on a free port, with password authentication, so
clients connect exactly as a deployment's would. PostgreSQL refuses to run as
root, so under root the cluster belongs to the ``postgres`` user and its
commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

#: The cluster's superuser; tests create their own role and database, as an operator would.
SUPERUSER = "postgres"
#: Settings for a disposable server: listen on loopback only, no Unix socket, no waiting on the disk
#: (a clean stop still writes everything, so data survives a restart).
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "max_connections": "200",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb``, else ``pg_config --bindir``, else PATH."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin, "
        "pg_config --bindir or PATH; install Debian's postgresql package (scripts/test.sh does)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """One cluster: :meth:`create` makes it, :meth:`start` runs it, :meth:`remove` stops it and deletes it."""

    bindir: Path
    root: Path
    port: int
    superuser_password: str
    run_as: str | None  # the account running the server's commands, when we are root

    @classmethod
    def create(cls) -> PostgresServer:
        """A fresh, stopped cluster in a new temporary folder (initdb)."""
        bindir = find_bindir()
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="sn46-postgres-"))
        password = os.urandom(12).hex()
        (root / "pwfile").write_text(password)
        if run_as:
            account = pwd.getpwnam(run_as)
            for path in (root, root / "pwfile"):
                os.chown(path, account.pw_uid, account.pw_gid)
        server = cls(bindir=bindir, root=root, port=0, superuser_password=password, run_as=run_as)
        server._run(
            "initdb",
            "-D",
            str(server.datadir),
            "-U",
            SUPERUSER,
            f"--pwfile={root / 'pwfile'}",
            "--auth-host=scram-sha-256",
            "--auth-local=reject",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return server

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def start(self, attempts: int = 3) -> None:
        """Start on a free port (another one if a race took it), waiting until it accepts connections."""
        for attempt in range(attempts):
            self.port = self.port or free_port()
            settings = {**SERVER_SETTINGS, "port": self.port}
            options = " ".join(f"-c {name}='{value}'" for name, value in settings.items())
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                )
                return
            except subprocess.CalledProcessError:
                if attempt == attempts - 1:
                    raise
                self.port = 0

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir))

    def restart(self) -> None:
        """Stop (a clean shutdown writes everything out) and start again on the same port."""
        self.stop()
        self.start()

    def remove(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None):
        """A psycopg2 connection over TCP, in autocommit mode (CREATE DATABASE needs it)."""
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=user,
            password=self.superuser_password if password is None else password,
        )
        conn.autocommit = True
        return conn

    def create_database(self, name: str, owner: str, password: str) -> None:
        """A login role and a database it owns: what docs/dagster-instance.md tells an operator to create."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                role, database = sql.Identifier(owner), sql.Identifier(name)
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(role), [password])
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
        finally:
            conn.close()

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if out.returncode != 0:
            log = self.log_text()[-2000:] if self.logfile.exists() else ""
            raise subprocess.CalledProcessError(out.returncode, command, out.stdout, out.stderr + log)
