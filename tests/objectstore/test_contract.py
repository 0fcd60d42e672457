"""The object-store contract, run identically on the folder backend and on S3 (moto over HTTP)."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

from sn46_pipelines.objectstore import (
    NotFoundError,
    ObjectStoreError,
    PreconditionFailedError,
    StoreUnavailableError,
    open_store,
)


def test_put_get_head_round_trip(store):
    etag = store.put("a/b.bin", b"hello world")
    info = store.head("a/b.bin")
    assert (info.key, info.size, info.etag) == ("a/b.bin", 11, etag)
    assert store.get("a/b.bin") == b"hello world"
    assert store.exists("a/b.bin") and not store.exists("a/missing")
    with store.open("a/b.bin") as f:
        assert f.read(5) == b"hello"


def test_put_replaces_and_changes_etag(store):
    first = store.put("k", b"one")
    second = store.put("k", b"two")
    assert first != second
    assert store.get("k") == b"two"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 5, b"01234"), (3, 7, b"3456"), (7, None, b"789"), (4, 4, b""), (8, 100, b"89")],
)
def test_byte_ranges(store, start, end, expected):
    store.put("digits", b"0123456789")
    assert store.get_range("digits", start, end) == expected


def test_invalid_byte_range_is_rejected(store):
    store.put("digits", b"0123456789")
    with pytest.raises(ValueError):
        store.get_range("digits", 5, 2)


def test_missing_keys_raise_not_found(store):
    store.put("present", b"x")  # the store itself exists
    for call in (
        lambda: store.get("absent"),
        lambda: store.head("absent"),
        lambda: store.get_range("absent", 0, 1),
        lambda: store.copy("absent", "dest"),
    ):
        with pytest.raises(NotFoundError, match="absent"):
            call()
    with pytest.raises(NotFoundError), store.open("absent"):
        pass
    store.delete("absent")  # deleting a missing key is fine
    assert not store.exists("dest")


KEYS = ["a-b", "a/b/c", "a/b/d", "a/c", "a0", "b", "data/hotkey=x/job_id=1/f.parquet"]


def test_listing_within_one_folder_is_in_key_order_with_delimiter_and_start_after(store):
    """What every backend guarantees, and all the code relies on: byte order among one folder's entries.

    The upload sensor's cursors are ``start_after`` in one job folder, whose
    files are flat; no code depends on the order across folder levels.
    """
    for key in reversed(KEYS):
        store.put(key, key.encode())
    assert sorted(o.key for o in store.list()) == sorted(KEYS)
    assert [o.key for o in store.list("a/", delimiter="/")] == ["a/c"]
    assert [o.key for o in store.list("", delimiter="/")] == ["a-b", "a0", "b"]
    assert list(store.list_prefixes("a/")) == ["a/b/"]
    assert list(store.list_prefixes("")) == ["a/", "data/"]
    assert [o.key for o in store.list("a/b/", start_after="a/b/c")] == ["a/b/d"]
    assert [o.key for o in store.list("", delimiter="/", start_after="a0")] == ["b"]
    assert list(store.list_prefixes("data/hotkey=x/")) == ["data/hotkey=x/job_id=1/"]
    sizes = {o.key: o.size for o in store.list()}
    assert sizes["a/b/c"] == len(b"a/b/c")


def test_a_deep_listing_is_in_byte_order_on_aws_like_stores_only(store, request):
    """AWS, moto and the folder store list a whole tree in byte order; SeaweedFS lists it folder by folder
    (``a/b/c`` before ``a-b``), so nothing may rely on the order across levels."""
    for key in reversed(KEYS):
        store.put(key, key.encode())
    if "seaweedfs" in request.node.callspec.id:
        tree = ["a/b/c", "a/b/d", "a/c", "a-b", "a0", "b", "data/hotkey=x/job_id=1/f.parquet"]
        assert [o.key for o in store.list()] == tree
        return
    assert [o.key for o in store.list()] == sorted(KEYS)
    assert [o.key for o in store.list("a", start_after="a/b/c")] == ["a/b/d", "a/c", "a0"]
    assert [o.key for o in store.list(start_after="a0")] == ["b", "data/hotkey=x/job_id=1/f.parquet"]


def test_listing_2500_keys_is_never_cut_at_1000(store):
    keys = [f"many/{i:05d}" for i in range(2500)]
    payload = b"x"
    if hasattr(store, "client"):  # S3: batch the setup through the raw client
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(k, payload), keys))
    else:
        for key in keys:
            store.put(key, payload)
    store.requests.reset()
    listed = [o.key for o in store.list("many/")]
    assert listed == keys
    if hasattr(store, "client"):
        assert store.requests.total == 3  # three pages of at most 1,000
    assert [o.key for o in store.list("many/", start_after="many/01999")] == keys[2000:]


def test_delete_many_and_copy(store, request):
    for i in range(5):
        store.put(f"d/{i}", b"v")
    store.copy("d/0", "copied/0")
    assert store.get("copied/0") == b"v"
    assert store.delete_many(f"d/{i}" for i in range(5)) == 5
    assert [o.key for o in store.list()] == ["copied/0"]
    # SeaweedFS keeps listing a prefix whose last key is gone: callers of list_prefixes must
    # expect a "folder" with nothing in it (every caller in this project does).
    emptied = ["d/"] if "seaweedfs" in request.node.callspec.id else []
    assert list(store.list_prefixes()) == ["copied/", *emptied]
    assert not list(store.list("d/"))


def test_create_if_absent(store):
    store.put_if_absent("once", b"first")
    with pytest.raises(PreconditionFailedError, match="once"):
        store.put_if_absent("once", b"second")
    assert store.get("once") == b"first"


def test_replace_if_etag_matches(store):
    etag = store.put("cas", b"v1")
    new_etag = store.put_if_match("cas", b"v2", etag)
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("cas", b"v3", etag)  # stale etag
    assert store.get("cas") == b"v2"
    assert store.head("cas").etag == new_etag
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("never-written", b"x", etag)


# -- two real processes racing ---------------------------------------------------------


def _race_create(url: str, worker: int, keys: int, start, results) -> None:
    store = open_store(url)
    start.wait()
    won = []
    for i in range(keys):
        try:
            store.put_if_absent(f"race/{i}", f"worker-{worker}".encode())
            won.append(i)
        except PreconditionFailedError:
            pass
    results.put((worker, won))


def _race_increment(url: str, increments: int, start) -> None:
    store = open_store(url)
    start.wait()
    done = 0
    while done < increments:
        info = store.head("counter")
        value = int(store.get("counter"))
        try:
            store.put_if_match("counter", str(value + 1).encode(), info.etag)
            done += 1
        except PreconditionFailedError:
            continue  # lost the race: read again


def test_two_processes_racing_create_if_absent_exactly_one_wins(store_url):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    keys = 40
    procs = [ctx.Process(target=_race_create, args=(store_url, w, keys, start, results)) for w in (0, 1)]
    for p in procs:
        p.start()
    won = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(won[0] + won[1]) == list(range(keys))  # every key won by exactly one
    store = open_store(store_url)
    for i in range(keys):
        winner = 0 if i in won[0] else 1
        assert store.get(f"race/{i}") == f"worker-{winner}".encode()


def test_two_processes_racing_replace_if_match_lose_no_update(store_url):
    store = open_store(store_url)
    store.put("counter", b"0")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    increments = 25
    procs = [ctx.Process(target=_race_increment, args=(store_url, increments, start)) for _ in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    assert int(store.get("counter")) == 2 * increments


# -- large objects stream -----------------------------------------------------------------

_STREAM_CHILD = textwrap.dedent(
    """
    import hashlib, io, json, resource, sys
    from sn46_pipelines.objectstore import open_store

    class Pattern(io.RawIOBase):
        '''64 MiB of non-repeating bytes, generated as read: nothing held whole.'''
        def __init__(self, size):
            self.left, self.n = size, 0
        def readable(self):
            return True
        def readinto(self, buf):
            if not self.left:
                return 0
            block = hashlib.sha512(self.n.to_bytes(8, "big")).digest() * 1024  # 64 KiB
            self.n += 1
            k = min(len(buf), len(block), self.left)
            buf[:k] = block[:k]
            self.left -= k
            return k

    store = open_store(sys.argv[1])
    size = int(sys.argv[2])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.put("big.bin", io.BufferedReader(Pattern(size), 1 << 20))
    after_put = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = hashlib.sha256()
    with store.open("big.bin") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    after_get = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    expected = hashlib.sha256()
    src = Pattern(size)
    buf = bytearray(1 << 16)
    while (k := src.readinto(buf)):
        expected.update(buf[:k])
    print(json.dumps({"put_kib": after_put - before, "get_kib": after_get - before,
                      "ok": digest.hexdigest() == expected.hexdigest(), "size": store.head("big.bin").size}))
    """
)


def test_64_mib_streamed_put_and_get_use_far_less_memory(store_url):
    size = 64 * 1024 * 1024
    out = subprocess.run(
        [sys.executable, "-c", _STREAM_CHILD, store_url, str(size)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert out.returncode == 0, out.stderr
    import json

    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["size"] == size
    # Peak RSS growth stays a fraction of the object: one part in flight, not 64 MiB.
    assert report["put_kib"] < 32 * 1024, report
    assert report["get_kib"] < 32 * 1024, report


# -- retries: throttling yes, 412 never ---------------------------------------------------


def _inject(store, responses):
    """Answer the next S3 requests with canned responses (fault injection, in-process)."""
    from botocore.awsrequest import AWSResponse

    queue = list(responses)

    def before_send(request, **_):
        if queue:
            status, body, action = queue.pop(0)
            if action:
                action()
            raw = io.BytesIO(body)
            return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(raw))
        return None

    store.client.meta.events.register_first("before-send.s3", before_send)


class _Raw:
    def __init__(self, buf):
        self._buf = buf

    def stream(self, **_):
        yield self._buf.getvalue()

    def read(self, *_):
        return self._buf.getvalue()


_SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
_INTERNAL = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
_BAD_KEY = b"<Error><Code>InvalidAccessKeyId</Code><Message>The key does not exist.</Message></Error>"


@pytest.fixture
def s3_store(s3_bucket):
    return open_store(f"s3://{s3_bucket}/p")


def test_throttling_and_5xx_are_retried(s3_store):
    _inject(s3_store, [(503, _SLOW_DOWN, None), (500, _INTERNAL, None)])
    s3_store.requests.reset()
    s3_store.put("k", b"v")
    assert s3_store.get("k") == b"v"
    assert s3_store.requests.by_operation["put"] == 3  # two injected failures, then the real PUT


def test_precondition_failure_is_never_retried(s3_store):
    s3_store.put("k", b"v")
    s3_store.requests.reset()
    with pytest.raises(PreconditionFailedError):
        s3_store.put_if_absent("k", b"other")
    assert s3_store.requests.by_operation == {"put": 1}


def test_lost_response_of_a_conditional_write_is_recognised_as_our_own(s3_store, moto_endpoint):
    """The first PUT lands but its answer is lost; the retry's 412 meets our own bytes."""
    body = b"record bytes"
    land_first_attempt = lambda: open_store(s3_store.url).put("rec", body)  # noqa: E731
    _inject(s3_store, [(500, _INTERNAL, land_first_attempt)])
    etag = s3_store.put_if_absent("rec", body)
    assert etag == s3_store.head("rec").etag
    # Someone else's bytes still lose.
    _inject(s3_store, [(500, _INTERNAL, lambda: open_store(s3_store.url).put("rec2", b"theirs"))])
    with pytest.raises(PreconditionFailedError):
        s3_store.put_if_absent("rec2", b"ours")


# -- bad stores: one clear line, naming the store ------------------------------------------


def test_unknown_scheme_and_malformed_urls():
    for url, needle in [
        ("ftp://host/x", "unknown store scheme 'ftp'"),
        ("file://relative/x", "absolute path"),
        ("s3:///prefix-only", "needs a bucket"),
        ("just-a-path", "unknown store scheme"),
    ]:
        with pytest.raises(ObjectStoreError, match=needle):
            open_store(url)


def test_missing_bucket_is_unavailable_not_empty(moto_endpoint):
    from sn46_pipelines.objectstore import StoreUnavailableError

    store = open_store("s3://no-such-bucket-here/models")
    for call in (store.check, lambda: store.head("x"), lambda: list(store.list()), lambda: store.get("x")):
        with pytest.raises(
            StoreUnavailableError, match="s3://no-such-bucket-here/models: bucket does not exist"
        ):
            call()


def test_missing_or_non_folder_root_is_unavailable(tmp_path):
    from sn46_pipelines.objectstore import StoreUnavailableError

    missing = open_store(f"file://{tmp_path}/nothing-here")
    with pytest.raises(StoreUnavailableError, match="folder does not exist"):
        list(missing.list())
    with pytest.raises(StoreUnavailableError, match="folder does not exist"):
        missing.head("x")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(StoreUnavailableError):
        open_store(f"file://{afile}").check()


def test_wrong_credentials_are_unavailable(s3_store):
    from sn46_pipelines.objectstore import StoreUnavailableError

    _inject(s3_store, [(403, _BAD_KEY, None)])
    with pytest.raises(StoreUnavailableError, match="wrong credentials"):
        s3_store.get("k")


def test_invalid_keys_are_rejected_on_the_folder_store(tmp_path):
    store = open_store(f"file://{tmp_path}")
    for key in ("../escape", "/abs", "a//b", "a/./b", ".sn46-objectstore/tmp/x", ""):
        with pytest.raises(ObjectStoreError):
            store.put(key, b"x")
    assert list(store.list()) == []


def test_a_failed_streamed_put_leaves_nothing_behind(store):
    class Breaks(io.RawIOBase):
        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def readinto(self, buf):
            if self.sent > 20 * 1024 * 1024:
                raise OSError("source vanished")
            k = min(len(buf), 1 << 20)
            buf[:k] = b"\0" * k
            self.sent += k
            return k

    store.put("keep", b"good")
    with pytest.raises(OSError, match="source vanished"):
        store.put("half", io.BufferedReader(Breaks()))
    assert not store.exists("half")
    assert [o.key for o in store.list()] == ["keep"]
    assert hashlib.sha256(store.get("keep")).hexdigest() == hashlib.sha256(b"good").hexdigest()


def test_a_pending_upload_is_published_under_a_later_key_or_leaves_nothing(store, tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    with store.begin_upload(source) as pending:
        etag = pending.publish("blobs/late-key")
    assert store.head("blobs/late-key").etag == etag
    assert store.get("blobs/late-key") == source.read_bytes()

    with store.begin_upload(source):
        pass  # never published: discarded on exit
    assert [o.key for o in store.list()] == ["blobs/late-key"]
    if store.url.startswith("file://"):  # the staged copy inside the folder store is gone too
        internal = store.root / ".sn46-objectstore" / "tmp"
        assert not list(internal.iterdir())
        with pytest.raises(ObjectStoreError, match="already published or discarded"):
            pending.publish("blobs/again")


class _DiskOrder:
    """Records, in order, what reaches the disk (fsync) and what becomes visible (link, rename)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        fsync, link, replace = os.fsync, os.link, os.replace

        def recorded_fsync(fd: int) -> None:
            fsync(fd)
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

        def recorded(kind: str, real):
            def move(src, dst, *args, **kwargs):
                real(src, dst, *args, **kwargs)
                self.events.append((kind, str(dst)))

            return move

        monkeypatch.setattr(os, "fsync", recorded_fsync)
        monkeypatch.setattr(os, "link", recorded("link", link))
        monkeypatch.setattr(os, "replace", recorded("replace", replace))

    def index(self, kind: str, path: object) -> int:
        return self.events.index((kind, str(path)))


@pytest.mark.parametrize("write", ["put", "put_if_absent", "upload", "pending"])
def test_a_folder_store_write_is_on_disk_before_it_is_visible(tmp_path, monkeypatch, write):
    """A power cut after a write returns loses nothing: the data is fsynced before its name appears,
    and the folder holding the name after (a model-store record must never name a blob still in cache)."""
    store = open_store(f"file://{tmp_path / 'store'}")
    store.put("warm/up", b"creates the internal folders")
    source = tmp_path / "model.pt"
    source.write_bytes(os.urandom(1 << 20))
    disk = _DiskOrder(monkeypatch)
    if write == "pending":
        with store.begin_upload(source) as pending:
            pending.publish("blobs/a/b")
    elif write == "upload":
        store.upload("blobs/a/b", source)
    else:
        getattr(store, write)("blobs/a/b", source.read_bytes())
    final = tmp_path / "store" / "blobs" / "a" / "b"
    (made_visible,) = [
        i for i, (kind, path) in enumerate(disk.events) if kind != "fsync" and path == str(final)
    ]
    staged = [
        i
        for i, (kind, path) in enumerate(disk.events)
        if kind == "fsync" and "/.sn46-objectstore/tmp/" in path
    ]
    assert staged and staged[-1] < made_visible
    assert disk.index("fsync", final.parent) > made_visible
    assert store.get("blobs/a/b") == source.read_bytes()


@pytest.mark.parametrize("errno_", [28, 5], ids=["disk full", "I/O error"])
def test_a_folder_store_write_the_disk_refuses_fails_clearly_and_leaves_the_old_object(
    tmp_path, monkeypatch, errno_
):
    store = open_store(f"file://{tmp_path / 'store'}")
    store.put("records/v1.json", b"the committed record")

    def refuse(fd: int) -> None:
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(StoreUnavailableError, match=f"cannot write: {os.strerror(errno_)}"):
        store.put("records/v1.json", b"a replacement that never reached the disk")
    with pytest.raises(StoreUnavailableError):
        store.put_if_absent("records/v2.json", b"a record that never reached the disk")
    monkeypatch.undo()
    assert store.get("records/v1.json") == b"the committed record"
    assert [info.key for info in store.list("")] == ["records/v1.json"]
    assert not list((tmp_path / "store" / ".sn46-objectstore" / "tmp").iterdir())


def test_a_folder_store_on_a_filesystem_that_cannot_sync_folders_still_writes(tmp_path, monkeypatch):
    """FUSE and some network filesystems answer EINVAL to fsync on a folder; the file itself is synced."""
    store = open_store(f"file://{tmp_path / 'store'}")
    fsync, synced_files = os.fsync, []

    def files_only(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(path):
            raise OSError(22, os.strerror(22))
        fsync(fd)
        synced_files.append(path)

    monkeypatch.setattr(os, "fsync", files_only)
    store.put("a/b", b"payload")
    assert store.get("a/b") == b"payload" and synced_files


def _leave_unfinished_write(store, tmp_path) -> int:
    """What a writer killed mid-write leaves: a staging file here, an incomplete multipart upload on S3."""
    data = os.urandom(5 << 20)
    if store.url.startswith("file://"):
        staging = store.root / ".sn46-objectstore" / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "0123abcd").write_bytes(data)
    else:
        key = store.prefix + "blobs/half-written"
        upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)["UploadId"]
        store.client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload, PartNumber=1, Body=data)
    return len(data)


def test_unfinished_writes_are_listed_as_leftovers_and_removed(store, tmp_path):
    store.put("keep", b"good")
    assert store.leftovers(older_than=0) == []
    size = _leave_unfinished_write(store, tmp_path)
    [leftover] = store.leftovers(older_than=-60)  # however young
    assert leftover.size == size and leftover.kind in ("staging_file", "multipart_upload")
    assert [o.key for o in store.list()] == ["keep"]  # never an object
    store.remove_leftover(leftover)
    assert store.leftovers(older_than=-60) == []
    store.remove_leftover(leftover)  # gone already: nothing to do
    assert store.get("keep") == b"good"


def test_a_staging_file_in_use_is_never_a_leftover(tmp_path):
    store = open_store(f"file://{tmp_path}")
    code = textwrap.dedent(f"""
        import sys
        from sn46_pipelines.objectstore import open_store
        store = open_store("file://{tmp_path}")
        with store._staged(b"in flight"):
            print("staged", flush=True)
            sys.stdin.readline()
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "staged\n"
    assert store.leftovers(older_than=-60) == []  # the live writer holds its lock
    child.kill()  # SIGKILL: the kernel drops the lock, the file stays
    child.wait()
    [leftover] = store.leftovers(older_than=-60)
    assert leftover.size == len(b"in flight")
    store.remove_leftover(leftover)
    assert store.leftovers(older_than=-60) == []


def test_delete_if_match(store):
    etag = store.put("lease", b"mine")
    store.put("lease", b"taken over")
    with pytest.raises(PreconditionFailedError):
        store.delete_if_match("lease", etag)  # stale: the object stays
    assert store.get("lease") == b"taken over"
    store.delete_if_match("lease", store.head("lease").etag)
    assert not store.exists("lease")
    with pytest.raises(PreconditionFailedError):
        store.delete_if_match("lease", etag)  # a missing key fails the precondition too
