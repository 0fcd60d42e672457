"""Real processes racing: many writers, the genesis race, GC against commits, crashes and kill -9.

Each runs on a folder, on moto and on SeaweedFS, whose conditional writes are
atomic the way AWS's are (moto's are made so in tests/conftest.py).
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from sn46_pipelines.modelstore import ModelStore, collect_garbage, verify
from sn46_pipelines.objectstore import open_store
from tests.modelstore.modelstore_helpers import CrashingStore, start_worker


@pytest.fixture
def store_url(every_store_url: str) -> str:
    return every_store_url


def test_six_writers_ten_commits_each_lose_nothing(store_url: str, tmp_path):
    procs = []
    for w in range(6):
        folder = tmp_path / f"w{w}"
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        procs.append(start_worker("commit", store_url, str(folder), "10", f"writer{w}"))
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    counters = sorted(c for out, _ in outputs for c in json.loads(out))
    assert counters == list(range(60))
    store = ModelStore.open(store_url)
    records = store.list_versions()
    assert sorted((r.metadata["writer"], r.metadata["i"]) for r in records) == sorted(
        (f"writer{w}", i) for w in range(6) for i in range(10)
    )
    report = verify(store, deep=True)
    assert (report.valid, report.versions) == (True, 60)


def test_genesis_race_has_exactly_one_winner(store_url: str, tmp_path):
    procs = []
    start = time.time() + 3.0  # all interpreters are up by then; they then write at the same instant
    for w in range(4):  # identical bytes: a loser must not disturb the winner's (shared) blob
        path = tmp_path / f"writer-{w}" / "model.pt"
        path.parent.mkdir()
        path.write_bytes(b"the same weights")
        procs.append(start_worker("genesis", store_url, str(path), str(start)))
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    winners = [r for r in results if r["won"]]
    assert len(winners) == 1 and winners[0]["counter"] == 0
    store = ModelStore.open(store_url)
    head = store.head()
    assert head.counter == 0
    assert all(r["winner"] == head.message for r in results if not r["won"])
    assert verify(store, deep=True).valid
    store.checkout("head", tmp_path / "out")
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"the same weights"


def test_gc_racing_commits_deletes_nothing_live_or_in_flight(store_url: str, make_checkpoint, tmp_path):
    store = ModelStore.open(store_url)
    for i in range(4):
        store.commit(make_checkpoint(i))
    folder = tmp_path / "racer"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    # The racer alternates two contents, so each commit reuses the blobs of the version GC is
    # collecting right then: the dangerous case for a store that skips uploading existing blobs.
    writer = start_worker("commit", store_url, str(folder), "8", "racer", "2")
    stop = threading.Event()
    runs = []

    def gc_loop() -> None:
        gc_store = ModelStore.open(store_url)
        while not stop.is_set():
            try:
                runs.append(collect_garbage(gc_store, keep_versions=1, orphan_grace=0))
            except Exception as exc:  # noqa: BLE001  recorded: a busy lease is fine, anything else fails below
                runs.append(exc)

    thread = threading.Thread(target=gc_loop)
    thread.start()
    _out, err = writer.communicate(timeout=300)
    stop.set()
    thread.join()
    assert writer.returncode == 0, err
    assert not [r for r in runs if isinstance(r, Exception) and "another GC" not in str(r)]
    collect_garbage(store, keep_versions=1, orphan_grace=0)
    report = verify(store, deep=True)
    assert (report.valid, report.versions) == (True, 12), report
    store.checkout("head", tmp_path / "head")


@pytest.mark.parametrize("crash_at", range(7))
def test_a_crash_at_any_commit_step_leaves_a_valid_chain(
    store_url: str, make_checkpoint, crash_at: int, tmp_path
):
    store = ModelStore.open(store_url)
    store.commit(make_checkpoint(0))
    store.commit(make_checkpoint(1))
    crashing = CrashingStore(store.objects, crash_at)
    with pytest.raises(Exception, match=r"crashed|dead"):
        ModelStore(crashing).commit(make_checkpoint(2), message="crashes")
    # steps: intent, 2 blob uploads, record, hint, intent delete, audit event
    assert crashing.dead
    survivor = ModelStore(open_store(store_url))
    report = verify(survivor, deep=True)
    assert report.valid, report
    assert survivor.head().counter == (2 if crash_at > 3 else 1)
    nxt = survivor.commit(make_checkpoint(3), message="after the crash")
    assert nxt.counter == survivor.head().counter
    gc = collect_garbage(
        survivor, keep_versions=10, orphan_grace=0, intent_ttl=0
    )  # the crashed commit is dead
    assert gc.collected == []
    # What the crash left (an intent, unreferenced blobs) is gone; everything left is referenced.
    assert not list(survivor.objects.list("inflight/"))
    referenced = {e.sha256 for r in survivor.list_versions() for e in r.manifest.values()}
    assert {i.key.rsplit("/", 1)[1] for i in survivor.objects.list("blobs/")} == referenced
    assert verify(survivor, deep=True).valid
    survivor.checkout("head", tmp_path / "out")


@pytest.mark.slow
def test_kill_minus_nine_mid_commit_leaves_a_valid_chain(tmp_path):
    url = f"file://{tmp_path}/store"
    (tmp_path / "store").mkdir()
    for delay in (0.6, 0.9):
        proc = start_worker("commit-loop", url, str(tmp_path / "model.pt"))
        proc.stdout.readline()  # at least one commit done
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = ModelStore.open(url)
        assert verify(store, deep=True).valid
    store.commit(tmp_path / "model.pt", message="after kill -9")
    collect_garbage(store, keep_versions=100, orphan_grace=0)
    assert verify(store, deep=True).valid
