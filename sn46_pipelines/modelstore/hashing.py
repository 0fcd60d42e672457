"""Streaming sha256 over files and object-store streams: never a whole checkpoint in memory."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

#: Read size for hashing: large enough that hashlib (which drops the GIL) dominates the loop.
HASH_CHUNK = 4 * 1024 * 1024


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """sha256 hex digest and size of a local file."""
    with open(path, "rb", buffering=0) as f:
        return hash_stream(f)


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """sha256 hex digest and byte count of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            digest.update(view[:n])
        else:
            chunk = stream.read(HASH_CHUNK)
            if not chunk:
                break
            n = len(chunk)
            digest.update(chunk)
        size += n
    return digest.hexdigest(), size


def copy_and_hash(source: BinaryIO, dest: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` into ``dest`` while hashing it, in one pass."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(HASH_CHUNK):
        digest.update(chunk)
        dest.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class HashingReader:
    """Wraps a readable stream and hashes what passes through (to verify bytes while copying them)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._stream.read(n)
        self._digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()
