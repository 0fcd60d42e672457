"""The GC lease: one garbage collector at a time, and commits wait while it deletes.

A lease is an object created with create-if-absent and renewed or taken over
with replace-if-etag-matches, so it holds across processes and machines. It
expires (wall-clock, so hosts need roughly synchronised clocks) so that a
crashed GC never blocks the store for good.

Releasing is conditional too: delete-if-etag-matches, one request, so a GC
whose lease expired and was taken over meanwhile never deletes the new
holder's lease. Where the server cannot delete conditionally, the lease is
instead replaced, if still ours, by one that has already expired, which
every later GC may take over; the object then stays until the next GC.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

from ..objectstore import NotFoundError, ObjectStore, PreconditionFailedError, UnsupportedOperationError
from .errors import StoreBusyError
from .layout import GC_LEASE
from .record import canonical_json, whoami

DEFAULT_TTL = 60.0


def _now() -> float:
    return datetime.now(UTC).timestamp()


def read_lease(objects: ObjectStore) -> tuple[dict, str] | None:
    """The current lease and its etag, or ``None`` when no unexpired lease is held."""
    try:
        etag = objects.head(GC_LEASE).etag
        raw = json.loads(objects.get(GC_LEASE))
    except NotFoundError:
        return None
    return (raw, etag) if raw.get("expires_at", 0) > _now() else None


class Lease:
    """A held GC lease; use as a context manager, call :meth:`renew` during long work."""

    def __init__(self, objects: ObjectStore, *, ttl: float = DEFAULT_TTL) -> None:
        self.objects = objects
        self.ttl = ttl
        self.owner = f"{whoami()}/{uuid.uuid4().hex[:12]}"
        self._etag: str | None = None
        self._renewed = 0.0
        self._expires = 0.0

    def _body(self) -> bytes:
        now = _now()
        self._expires = now + self.ttl
        return canonical_json({"owner": self.owner, "acquired_at": now, "expires_at": self._expires})

    def acquire(self) -> Lease:
        try:
            self._etag = self.objects.put_if_absent(GC_LEASE, self._body())
        except PreconditionFailedError:
            try:
                etag = self.objects.head(GC_LEASE).etag
                raw = json.loads(self.objects.get(GC_LEASE))
                if raw.get("expires_at", 0) > _now():
                    raise StoreBusyError(f"another GC holds the lease ({raw.get('owner')}); try again later")
                self._etag = self.objects.put_if_match(GC_LEASE, self._body(), etag)
            except (NotFoundError, PreconditionFailedError):
                raise StoreBusyError(
                    "another GC took the lease at the same moment; try again later"
                ) from None
        self._renewed = time.monotonic()
        return self

    def renew(self, *, force: bool = False) -> None:
        """Extend the lease (at most every third of its TTL unless ``force``); fail if it was lost."""
        if not force and time.monotonic() - self._renewed < self.ttl / 3:
            return
        if _now() > self._expires:
            raise StoreBusyError("the GC lease expired mid-run (commits may have resumed); stopping")
        try:
            self._etag = self.objects.put_if_match(GC_LEASE, self._body(), self._etag or "")
        except PreconditionFailedError:
            raise StoreBusyError("the GC lease expired and was taken over; stopping") from None
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lease up if it is still ours; a lease another GC has taken over is left alone."""
        if self._etag is None:
            return
        etag, self._etag = self._etag, None
        try:
            self.objects.delete_if_match(GC_LEASE, etag)
        except PreconditionFailedError:
            return  # expired and taken over, or gone: not ours to release
        except UnsupportedOperationError:
            expired = {"owner": self.owner, "acquired_at": _now(), "expires_at": 0, "released": True}
            with contextlib.suppress(PreconditionFailedError):
                self.objects.put_if_match(GC_LEASE, canonical_json(expired), etag)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def wait_until_free(objects: ObjectStore, *, timeout: float, poll: float = 0.05) -> None:
    """Block until the GC holding the lease now (if any) is done; commits call this after their intent.

    Only that GC must finish: a GC that takes the lease later lists intents
    after taking it, so it sees ours. Waiting for the holder to change (not
    for a free lease) means back-to-back GCs can never starve a commit.
    """
    current = read_lease(objects)
    if current is None:
        return
    owner = current[0].get("owner")
    deadline = time.monotonic() + timeout
    delay = poll
    while (current := read_lease(objects)) is not None and current[0].get("owner") == owner:
        if time.monotonic() > deadline:
            raise StoreBusyError(f"a GC has held the store for over {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
