"""Finding new miner uploads without re-listing the whole bucket.

Uploads land in leaf folders: ``data/hotkey={hk}/job_id={job}/`` and
``data/hotkey={hk}/epoch={epoch}/zipcode={zip}/`` (also spelled with the
hotkey's folder twice, ``data/hotkey={hk}/data/hotkey={hk}/epoch=...``, as
today's resi client writes it). New files appear at many places in key
order, so one global ``StartAfter`` cursor cannot work. Instead the cursor
keeps the last key seen in each leaf folder, and a scan costs one listing of
hotkeys, one per hotkey (its folders), one per leaf folder, and one per epoch
folder still being uploaded to (its zipcode folders), however many objects
already exist. Epoch ids sort in time order, so only a hotkey's
:data:`RECENT_EPOCHS` newest epochs and the epochs the cursor has never seen
are listed on every tick; a late file in an older epoch is left to the rescan.

Two things keep that honest:

* a file that sorts before its folder's cursor (a late upload with an older
  timestamp) is found by a rotating rescan that compares whole folders with
  the hotkey's processed-files manifest, inside a fixed request budget;
* a folder without a cursor entry (first sight, or a lost cursor) is compared
  with the manifest too, so nothing already processed is requested again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..objectstore import ObjectInfo, ObjectStore
from ..ss58 import is_ss58_address
from .layout import EPOCH_FOLDER, HOTKEY_FOLDER, UPLOAD_PREFIX, miner_folder

#: Epoch folders of a hotkey listed on every tick (newest first): the one being uploaded to now and the
#: one before it, whose last uploads arrive just after the next epoch starts.
RECENT_EPOCHS = 2


class ReadUploads(Protocol):
    """What ingest has read of one hotkey's uploads (its manifest, :class:`~.ingest.HotkeyManifest`)."""

    def has_read(self, upload: ObjectInfo) -> bool: ...


#: Returns what ingest has read of a hotkey's uploads (its manifest).
ProcessedFiles = Callable[[str], ReadUploads]


@dataclass
class ScanCursor:
    """What the sensor remembers between ticks (serialised as its Dagster cursor)."""

    folders: dict[str, str] = field(default_factory=dict)
    """Leaf folder below ``data/`` (``hotkey=H/job_id=J``, ``hotkey=H/epoch=E/zipcode=Z``) -> the name
    of the last file seen in it."""
    rescan_after: str = ""
    """The hotkey the rotating rescan stopped at."""
    requested: dict[str, str] = field(default_factory=dict)
    """hotkey -> ISO time of its last run request; rescans leave recently requested hotkeys alone."""

    def to_json(self) -> str:
        return json.dumps(
            {"v": 1, "folders": self.folders, "rescan_after": self.rescan_after, "requested": self.requested},
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> ScanCursor:
        """Parse a cursor; anything unreadable starts fresh (the manifests prevent duplicates)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                folders={str(k): str(v) for k, v in data["folders"].items()},
                rescan_after=str(data.get("rescan_after", "")),
                requested={str(k): str(v) for k, v in data.get("requested", {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()


@dataclass
class ScanResult:
    """One scan: the hotkeys to run now, those left for later ticks, and the next cursor."""

    new_files: dict[str, list[ObjectInfo]]
    deferred: list[str]
    invalid_folders: list[str]
    late_files: int
    cursor: ScanCursor
    requests: int


@dataclass
class _Found:
    files: list[ObjectInfo] = field(default_factory=list)
    folder_ends: dict[str, str] = field(default_factory=dict)


def scan_uploads(
    store: ObjectStore,
    cursor: ScanCursor,
    processed: ProcessedFiles,
    *,
    max_hotkeys: int = 64,
    rescan_budget: int = 40,
    rescan_quiet: timedelta = timedelta(minutes=30),
    now: datetime | None = None,
    workers: int = 16,
) -> ScanResult:
    """Scan the upload area once.

    ``max_hotkeys`` caps the hotkeys returned per scan so the first tick over a
    large bucket does not flood the run queue: the others keep their cursors
    and come back on the next scan. ``rescan_budget`` is the most requests the
    late-file rescan may spend. ``processed`` must be safe to call from several threads.
    """
    now = now or datetime.now(UTC)
    start_requests = store.requests.total
    hotkeys, invalid = _hotkeys(store)
    # Each hotkey costs a few round trips that do not depend on each other: on S3 a tick is
    # network-bound, so listing hotkeys concurrently divides its wall time by ``workers``.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hotkeys)))) as pool:
        found = dict(zip(hotkeys, pool.map(lambda hk: _new_in_hotkey(store, hk, cursor, processed), hotkeys)))

    # Oldest waiting upload first, so deferred hotkeys are not starved.
    waiting = sorted(
        (hk for hk in found if found[hk].files), key=lambda hk: min(f.mtime for f in found[hk].files)
    )
    chosen, deferred = waiting[:max_hotkeys], waiting[max_hotkeys:]
    next_cursor = ScanCursor(
        dict(cursor.folders), cursor.rescan_after, _recent(cursor.requested, now, rescan_quiet)
    )
    new_files = {hk: found[hk].files for hk in chosen}
    for hk in set(found) - set(deferred):  # deferred hotkeys keep their cursors and come back
        next_cursor.folders.update(found[hk].folder_ends)

    late = 0
    if len(chosen) < max_hotkeys:
        budget_end = store.requests.total + rescan_budget
        for hotkey in _rotation(hotkeys, cursor.rescan_after):
            if store.requests.total >= budget_end or len(new_files) >= max_hotkeys:
                break
            next_cursor.rescan_after = hotkey
            if hotkey in new_files or hotkey in deferred or hotkey in next_cursor.requested:
                continue
            missed = _unprocessed(store, hotkey, processed)
            if missed:
                new_files[hotkey] = missed
                late += len(missed)

    for hk in new_files:
        next_cursor.requested[hk] = now.isoformat()
    return ScanResult(
        new_files=new_files,
        deferred=deferred,
        invalid_folders=invalid,
        late_files=late,
        cursor=next_cursor,
        requests=store.requests.total - start_requests,
    )


def list_hotkey_uploads(store: ObjectStore, hotkey: str) -> list[ObjectInfo]:
    """Every upload of one miner, in key order."""
    return list(store.list(miner_folder(hotkey)))


def _hotkeys(store: ObjectStore) -> tuple[list[str], list[str]]:
    """Valid hotkeys under ``data/``, and the folder names that are not hotkeys."""
    valid, invalid = [], []
    for prefix in store.list_prefixes(UPLOAD_PREFIX):
        name = prefix[len(UPLOAD_PREFIX) : -1]
        hotkey = name.removeprefix(HOTKEY_FOLDER)
        if name.startswith(HOTKEY_FOLDER) and is_ss58_address(hotkey):
            valid.append(hotkey)
        else:
            invalid.append(name)
    return valid, invalid


def _new_in_hotkey(store: ObjectStore, hotkey: str, cursor: ScanCursor, processed: ProcessedFiles) -> _Found:
    found = _Found()
    done: ReadUploads | None = None
    for folder in _leaf_folders(store, hotkey, cursor):
        folder_id = folder[len(UPLOAD_PREFIX) :].rstrip("/")
        after = cursor.folders.get(folder_id)
        files = list(store.list(folder, start_after=folder + after if after else None, delimiter="/"))
        if not files:
            continue
        found.folder_ends[folder_id] = files[-1].key[len(folder) :]
        if after is None:  # never seen (or the cursor was lost): trust the manifest
            done = processed(hotkey) if done is None else done
            files = [f for f in files if not done.has_read(f)]
        found.files.extend(files)
    return found


def _leaf_folders(store: ObjectStore, hotkey: str, cursor: ScanCursor) -> Iterable[str]:
    """The folders ``hotkey``'s files land in: job folders, and zipcode folders of its live epochs.

    Of ``data/hotkey=H/data/`` only the hotkey's own doubled folder's epochs
    are entered. Files anywhere else (no layout puts them there) are found by
    the rescan, which lists the whole hotkey, and quarantined at ingest with
    the reason their names give.
    """
    home = miner_folder(hotkey)
    epochs: list[str] = []
    for folder in store.list_prefixes(home):
        if folder == home + UPLOAD_PREFIX:
            epochs.extend(f for f in store.list_prefixes(home + miner_folder(hotkey)) if _is_epoch(f))
        elif _is_epoch(folder):
            epochs.append(folder)
        else:
            yield folder
    seen = {folder_id.rsplit("/", 1)[0] for folder_id in cursor.folders if "/" + EPOCH_FOLDER in folder_id}
    recent = set(sorted(epochs, key=lambda f: f.rsplit(EPOCH_FOLDER, 1)[1])[-RECENT_EPOCHS:])
    for epoch in epochs:
        if epoch in recent or epoch[len(UPLOAD_PREFIX) :].rstrip("/") not in seen:
            yield from store.list_prefixes(epoch)


def _is_epoch(folder: str) -> bool:
    return folder.rstrip("/").rsplit("/", 1)[-1].startswith(EPOCH_FOLDER)


def _unprocessed(store: ObjectStore, hotkey: str, processed: ProcessedFiles) -> list[ObjectInfo]:
    done = processed(hotkey)
    return [f for f in list_hotkey_uploads(store, hotkey) if not done.has_read(f)]


def _rotation(hotkeys: list[str], after: str) -> Iterable[str]:
    """All hotkeys once, starting just after ``after`` and wrapping around."""
    later = [hk for hk in hotkeys if hk > after]
    return later + [hk for hk in hotkeys if hk <= after]


def _recent(requested: dict[str, str], now: datetime, quiet: timedelta) -> dict[str, str]:
    keep = {}
    for hotkey, when in requested.items():
        try:
            if now - datetime.fromisoformat(when) < quiet:
                keep[hotkey] = when
        except ValueError:
            continue
    return keep
