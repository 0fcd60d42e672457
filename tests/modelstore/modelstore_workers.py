"""Child-process entry points for the model-store concurrency tests (run as a script).

python modelstore_workers.py commit URL FOLDER N WRITER [CYCLE]  # N commits with retries; content
                                                                 # repeats every CYCLE commits
python modelstore_workers.py commit-loop URL FILE         # commit forever (for kill -9)
python modelstore_workers.py commit-once URL FILE         # commit FILE once, print the version
python modelstore_workers.py lease URL TTL                # take the GC lease, print its owner; on a
                                                          # stdin line release it, pausing (a line
                                                          # out, a line in) just before the delete
python modelstore_workers.py genesis URL FILE START       # at START (epoch s), commit FILE believing
                                                          # the store empty; no retries: won or lost
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sn46_pipelines.modelstore import ConflictError, ModelStore


def main(argv: list[str]) -> int:
    command, url = argv[0], argv[1]
    store = ModelStore.open(url)
    if command == "commit":
        folder, n, writer = Path(argv[2]), int(argv[3]), argv[4]
        cycle = int(argv[5]) if len(argv) > 5 else n
        done = []
        for i in range(n):
            (folder / "model.pt").write_bytes(f"{writer}-{i % cycle}".encode() * 100)
            record = store.commit(
                folder, message=f"{writer}/{i}", metadata={"writer": writer, "i": i}, retries=200
            )
            done.append(record.counter)
        print(json.dumps(done))
        return 0
    if command == "commit-loop":
        path = Path(argv[2])
        i = 0
        while True:
            path.write_bytes(bytes([i % 251]) * (4 << 20) + str(i).encode())
            store.commit(path, message=f"loop {i}", retries=5)
            print(i, flush=True)
            i += 1
    if command == "commit-once":
        print(store.commit(Path(argv[2]), message="once").version_id, flush=True)
        return 0
    if command == "lease":
        return _hold_lease(store, float(argv[2]))
    if command == "genesis":
        store.head = lambda: None  # every racer read an empty store a moment ago
        time.sleep(max(0.0, float(argv[3]) - time.time()))
        try:
            record = store.commit(Path(argv[2]), message=argv[2])
        except ConflictError as exc:
            print(json.dumps({"won": False, "winner": exc.winner["message"] if exc.winner else None}))
            return 0
        print(json.dumps({"won": True, "counter": record.counter}))
        return 0
    raise SystemExit(f"unknown command {command}")


def _hold_lease(store: ModelStore, ttl: float) -> int:
    from sn46_pipelines.modelstore.lease import Lease

    objects = store.objects
    lease = Lease(objects, ttl=ttl).acquire()
    print(lease.owner, flush=True)
    sys.stdin.readline()

    def paused(delete):
        def call(*args, **kwargs):
            print("deleting", flush=True)  # the moment another GC may take the lease over
            sys.stdin.readline()
            return delete(*args, **kwargs)

        return call

    objects.delete = paused(objects.delete)
    objects.delete_if_match = paused(objects.delete_if_match)
    lease.release()
    print("released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
