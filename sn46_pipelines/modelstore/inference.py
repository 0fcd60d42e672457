"""InferenceClient: serve a model from the store, following a pin, a fixed version or the head.

Loading verifies every file's sha256 (files are cached locally by hash), then
builds a *new* model object through a loader hook and swaps one reference, so
a caller holding the previous model keeps a working, unchanged object. A
version that fails to download, verify or load is rejected and the old model
keeps serving. The poller never dies: errors are counted, reported by
:meth:`InferenceClient.health` and retried with exponential backoff. Every
delay is jittered (:meth:`InferenceClient.next_delay`), so a fleet of nodes
started together, or failing together in one outage, does not poll the
store in lockstep.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import TransientError
from ..objectstore import AccessDeniedError, StoreUnavailableError
from .errors import ModelStoreError, VersionCollectedError, VersionNotFoundError
from .hashing import hash_file
from .record import ManifestEntry, VersionRecord, parse_version
from .store import ModelStore

log = logging.getLogger(__name__)

#: The target that follows the newest version (a pin that tracks the head is "pin:NAME").
HEAD_TARGET = "head"
_VERSION = re.compile(r"^v?\d+$")
#: The healthy poll interval varies by this share either way: nodes started together drift apart.
POLL_SPREAD = 0.1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified version on local disk, as handed to a loader hook."""

    record: VersionRecord
    root: Path

    def path(self, name: str) -> Path:
        """Local path of the checkpoint file ``name`` (e.g. ``model.pt``)."""
        if name not in self.record.manifest:
            raise ModelStoreError(
                f"{self.record.version_id} has no file {name!r} (has {sorted(self.record.manifest)})"
            )
        return self.root / name


Loader = Callable[[Checkpoint], Any]


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One loaded model and the version it came from; never modified after creation."""

    model: Any
    record: VersionRecord
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class Health:
    target: str
    version_id: str | None
    record_hash: str | None
    loaded_at: str | None
    last_poll_at: str | None
    last_poll_ok: bool | None
    last_error: str | None
    consecutive_failures: int
    polling: bool

    @property
    def healthy(self) -> bool:
        return self.version_id is not None and self.consecutive_failures == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


class InferenceClient:
    """Keeps the model for ``target`` loaded: a counter (pinned), ``"head"`` (tracking) or a pin name."""

    def __init__(
        self,
        store: ModelStore,
        target: int | str = HEAD_TARGET,
        *,
        loader: Loader,
        poll_interval: float = 60.0,
        max_backoff: float = 600.0,
        cache_dir: str | os.PathLike[str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``rng`` draws the jitter of :meth:`next_delay` (a seeded one makes the delays repeatable)."""
        if poll_interval <= 0 or max_backoff < poll_interval:
            raise ValueError("poll_interval must be > 0 and max_backoff >= poll_interval")
        self.store = store
        self.target = _normalise(target)
        self.loader = loader
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="sn46-inference-"))
        self._rng = rng or random.Random()
        self._served: ServedModel | None = None
        self._lock = threading.Lock()  # one load at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_poll_at: datetime | None = None
        self._last_ok: bool | None = None
        self._last_error: str | None = None
        self._failures = 0

    # -- serving ---------------------------------------------------------------
    @property
    def served(self) -> ServedModel | None:
        """The current model and its record (a single reference read: always consistent)."""
        return self._served

    @property
    def model(self) -> Any:
        served = self._served
        if served is None:
            raise ModelStoreError(f"no model loaded yet for {self.target} (last error: {self._last_error})")
        return served.model

    def health(self) -> Health:
        served = self._served
        return Health(
            target=self.target,
            version_id=served.record.version_id if served else None,
            record_hash=served.record.record_hash if served else None,
            loaded_at=served.loaded_at.isoformat() if served else None,
            last_poll_at=self._last_poll_at.isoformat() if self._last_poll_at else None,
            last_poll_ok=self._last_ok,
            last_error=self._last_error,
            consecutive_failures=self._failures,
            polling=self._thread is not None and self._thread.is_alive(),
        )

    # -- polling ---------------------------------------------------------------
    def poll(self) -> bool:
        """Check the target once and load it if it changed; True on success. Never raises."""
        try:
            self._refresh()
        except Exception as exc:  # noqa: BLE001 - any failure must leave the old model serving
            self._failures += 1
            self._last_ok, self._last_error = False, f"{type(exc).__name__}: {exc}"
            log.warning("model poll for %s failed (%d in a row): %s", self.target, self._failures, exc)
            return False
        finally:
            self._last_poll_at = datetime.now(UTC)
        self._failures, self._last_ok, self._last_error = 0, True, None
        return True

    @property
    def last_poll_at(self) -> datetime | None:
        """When the last poll ended, successful or not (None before the first)."""
        return self._last_poll_at

    def next_delay(self) -> float:
        """Seconds to the next poll: about ``poll_interval`` while healthy, backing off after failures.

        Healthy: ``poll_interval`` times a uniform factor in 1 +- :data:`POLL_SPREAD`,
        so nodes deployed at the same moment drift apart instead of reading
        the store in step, while the mean interval stays ``poll_interval``.

        After ``n`` consecutive failures: "equal jitter" on the exponential
        backoff ``b = min(max_backoff, poll_interval * 2**n)``, a delay uniform
        in ``[b/2, b]``. Jitter spreads a fleet that failed in the same outage
        over half the backoff, so the store is not hit by every node at once
        when it returns. Equal rather than full jitter (uniform in ``[0, b]``):
        full jitter draws delays near zero, so a node could retry at once,
        over and over, against a store that is down or a version that fails
        to load; half the backoff as a floor keeps each node's retry rate
        bounded, and ``max_backoff`` stays the longest wait.
        """
        if self._failures == 0:
            return self.poll_interval * self._rng.uniform(1 - POLL_SPREAD, 1 + POLL_SPREAD)
        backoff = min(self.max_backoff, self.poll_interval * 2 ** min(self._failures, 30))
        return backoff / 2 + self._rng.uniform(0, backoff / 2)

    def check_target(self) -> str | None:
        """Whether the target can be served, asked once before a server starts; None when it resolves now.

        A fixed version that is not committed yet, or whose files were
        garbage-collected, raises :class:`VersionNotFoundError` or
        :class:`VersionCollectedError`: the number of a version not yet
        committed goes to whatever is committed next, a model nobody chose,
        so serving it is a mistake to name at start, not a wait (``head`` or
        a pin follow new versions). A pin not set yet or an empty store for
        ``head`` can be fixed later without restarting, and an outage ends:
        those return a line saying what the client waits for while it polls.
        So does a store that does not exist yet: a deployment may start its
        inference nodes before the first training run creates the model store
        (a folder store's folder, say). Denied access raises: it never ends by
        itself.
        """
        try:
            if self.target == HEAD_TARGET or self.target.startswith("pin:"):
                self.store.resolve(self.target)
                return None
            counter = parse_version(self.target)
            head = self.store.head_counter()
            collected = counter <= head and self.store.is_collected(counter)
        except VersionNotFoundError as exc:  # only a pin or head gets here: no such pin, or no version yet
            return f"waiting for {self.target}: {exc}"
        except TransientError as exc:
            return f"waiting for the store: {exc}"
        except AccessDeniedError:
            raise
        except StoreUnavailableError as exc:  # not there yet: the first commit creates it
            return f"waiting for the store to be created: {exc}"
        if counter > head:
            newest = f"the newest is v{head:010d}" if head >= 0 else "it has no versions yet"
            raise VersionNotFoundError(
                f"{self.target} is not in {self.store.url} ({newest}); a fixed version must already "
                "be committed: serve head or a pin to follow new versions"
            )
        if collected:
            raise VersionCollectedError(
                f"{self.target} in {self.store.url} was garbage-collected: only its record remains"
            )
        return None

    def start(self) -> InferenceClient:
        """Load once now (a failure is reported by :meth:`health`, not raised), then keep polling."""
        if self._thread is not None:
            return self
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sn46-inference-{self.target}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> InferenceClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.next_delay()):
            self.poll()

    # -- loading ---------------------------------------------------------------
    def _resolve(self) -> int:
        if self.target == HEAD_TARGET:
            return self.store.resolve("head")
        if self.target.startswith("pin:"):
            return self.store.resolve(self.target)
        return parse_version(self.target)

    def _refresh(self) -> None:
        with self._lock:
            counter = self._resolve()
            served = self._served
            if served is not None and served.record.counter == counter:
                return
            record = self.store.get(counter)
            if self.store.is_collected(counter):
                raise VersionCollectedError(f"{record.version_id} was garbage-collected; cannot load it")
            checkpoint = self._materialise(record)
            model = self.loader(checkpoint)
            self._served = ServedModel(model=model, record=record, loaded_at=datetime.now(UTC))
            log.info("now serving %s for %s", record.version_id, self.target)
            self._prune(keep=[record] + ([served.record] if served else []))

    def _prune(self, keep: list[VersionRecord]) -> None:
        """Drop cached files of versions no longer served, keeping the current and the previous one."""
        hashes = {r.record_hash for r in keep}
        blobs = {e.sha256 for r in keep for e in r.manifest.values()}
        for folder in (self.cache_dir / "versions").iterdir():
            if folder.name not in hashes:
                shutil.rmtree(folder, ignore_errors=True)
        for blob in (self.cache_dir / "blobs").iterdir():
            if blob.name not in blobs:
                blob.unlink(missing_ok=True)

    def _materialise(self, record: VersionRecord) -> Checkpoint:
        """Fetch (or re-verify cached) blobs, then lay the version out as hard links to them."""
        root = self.cache_dir / "versions" / record.record_hash
        for path, entry in record.manifest.items():
            blob = self._cached_blob(entry)
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.unlink(missing_ok=True)
            os.link(blob, partial)
            os.replace(partial, target)
        return Checkpoint(record=record, root=root)

    def _cached_blob(self, entry: ManifestEntry) -> Path:
        blob = self.cache_dir / "blobs" / entry.sha256
        if blob.exists() and hash_file(blob) == (entry.sha256, entry.size):
            return blob
        partial = blob.with_name(f".{entry.sha256}.partial")
        self.store.fetch_blob(entry, partial)  # hashes while downloading; raises on mismatch
        os.replace(partial, blob)
        return blob


def _normalise(target: int | str) -> str:
    if isinstance(target, int) and not isinstance(target, bool):
        return f"v{parse_version(target):010d}"
    text = str(target).strip()
    if text in ("head", "tracking"):
        return HEAD_TARGET
    if _VERSION.match(text):
        return f"v{parse_version(text):010d}"
    name = text.removeprefix("pin:")
    from .pins import check_pin_name

    return f"pin:{check_pin_name(name)}"
