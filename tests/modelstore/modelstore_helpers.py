"""Helpers shared by the model-store tests: worker processes and a crash-injecting store wrapper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).with_name("modelstore_workers.py")


def start_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Crash(Exception):
    """The simulated process died here."""


class CrashingStore:
    """Delegates to a real store until the ``crash_at``-th write, then every call fails like a dead process.

    Only used for fault injection: the store underneath is real, so what the
    "crashed" commit left behind is exactly what a real crash would leave.
    """

    WRITES = frozenset({"put", "upload", "put_if_absent", "put_if_match", "delete", "delete_many", "copy"})

    def __init__(self, inner, crash_at: int) -> None:
        self._inner = inner
        self._crash_at = crash_at
        self.writes: list[tuple[str, str]] = []
        self.dead = False

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._step(name, args)
            return attr(*args, **kwargs)

        return call

    def _step(self, name: str, args: tuple) -> None:
        if self.dead:
            raise Crash(f"dead before {name}")
        if name in self.WRITES:
            if len(self.writes) == self._crash_at:
                self.dead = True
                raise Crash(f"crashed before {name} {args[:1]}")
            self.writes.append((name, str(args[0]) if args else ""))

    def begin_upload(self, path):
        """The inner store's own staged transfer; publishing it counts as an ``upload`` write."""
        self._step("begin_upload", (path,))
        return _CrashingPending(self, self._inner.begin_upload(path))


class _CrashingPending:
    def __init__(self, store: CrashingStore, pending) -> None:
        self._store = store
        self._pending = pending

    def publish(self, key: str) -> str:
        self._store._step("upload", (key,))
        return self._pending.publish(key)

    def discard(self) -> None:
        self._pending.discard()

    def __enter__(self) -> _CrashingPending:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()
