"""``sn46 store``: the model store from the command line.

Exit codes: 0 success (or clean / in sync), 1 a problem was found (corrupt
chain, replica behind), 2 the command could not run (bad arguments, unusable
store, refused GC, collected version). With ``--json`` stdout holds exactly
one JSON document, errors included (``{"error": ...}``).

Only the standard library is imported at load time so ``sn46 --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import EXIT_FOUND, EXIT_OK, UsageError
from . import Handler, guarded


def register(subparsers: Any) -> None:
    """Add the ``store`` command group to the ``sn46`` parser."""
    parser = subparsers.add_parser(
        "store",
        help="hash-chained model store: commit, verify, gc, pins, export, replication",
        description="Hash-chained model checkpoints on file:// or s3:// (see docs/modelstore-format.md).",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="model store URL (default: the environment's model store; SN46_MODEL_STORE overrides)",
    )
    parser.set_defaults(group_parser=parser, handler=None)
    commands = parser.add_subparsers(dest="store_command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=guarded("store", handler))
        return sub

    p = add("commit", _commit, "commit a file or a folder as the next version")
    p.add_argument("path")
    p.add_argument("--message", "-m", default="")
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="K=V",
        help="metadata entry; V is parsed as JSON when it can be (repeatable)",
    )
    p.add_argument("--retries", type=int, default=0, help="re-read the head and retry on a conflict N times")
    add("head", _head, "show the newest version")
    p = add("inspect", _inspect, "show one version's record")
    p.add_argument("version", help="v0000000042, 42, head or pin:NAME")
    add("list", _list, "list every version, oldest first")
    p = add("checkout", _checkout, "write a version's files to a folder after verifying their hashes")
    p.add_argument("version")
    p.add_argument("dest")
    p = add("verify", _verify, "verify the chain (exit 0 valid, 1 corrupt, 2 error)")
    p.add_argument("--deep", action="store_true", help="also re-hash every live blob")
    p = add(
        "find-corruption", _find_corruption, "name the first bad version (exit 0 clean, 1 found, 2 error)"
    )
    p.add_argument("--shallow", action="store_true", help="skip re-hashing blobs")
    p = add("gc", _gc, "delete the files of versions outside the retention policy")
    p.add_argument("--keep-versions", type=int, help="newest N versions stay live (default: config)")
    p.add_argument("--keep-min-versions", type=int, help="refuse if fewer would stay live (default: config)")
    p.add_argument(
        "--protect", type=_counter_list, help="counters that stay live, e.g. 5,12 (default: config)"
    )
    p.add_argument(
        "--orphan-grace",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="only delete unreferenced blobs and unfinished writes older than this (default 3600)",
    )
    p.add_argument("--dry-run", action="store_true")
    p = add("pin", _pin, "point a deployment pin at a version, or make it track the head")
    p.add_argument("name")
    p.add_argument("version", nargs="?")
    p.add_argument("--track", action="store_true", help="follow the head instead of a fixed version")
    add("pins", _pins, "show every pin")
    p = add("pin-history", _pin_history, "show every change of one pin")
    p.add_argument("name")
    p = add("export", _export, "write versions (records and blobs) to a tar.gz")
    p.add_argument("--versions", type=_counter_list, required=True, help="e.g. 3,5")
    p.add_argument("--output", required=True)
    p = add("import", _import, "import a tar.gz made by export, verifying every hash first")
    p.add_argument("archive")
    p = add("replication-check", _replication, "compare with a replica (exit 0 in sync, 1 not, 2 error)")
    p.add_argument("--replica", metavar="URL", help="replica store URL (default: the environment's replica)")
    p.add_argument("--repair", action="store_true", help="copy what is missing or corrupt, then check again")
    p.add_argument(
        "--deep",
        action="store_true",
        help="compare every record byte for byte and re-hash every replica blob",
    )
    p = add("stats", _stats, "storage, version and GC metrics")
    p.add_argument("--prometheus", action="store_true", help="print them in Prometheus' text format")
    p = add("audit", _audit, "the audit trail: commits, pin changes, GC runs")
    p.add_argument("--kind", help="only events of this kind (commit, pin, gc, import, repair)")


def main(argv: Sequence[str] | None = None) -> int:
    """``sn46 store ARGS``: the group's arguments alone, through the whole command (its ``--env``
    and error handling included)."""
    from . import main as sn46

    return sn46(["store", *(sys.argv[1:] if argv is None else argv)])


# -- plumbing -----------------------------------------------------------------


def _settings(args: argparse.Namespace):
    """The settings of the environment ``--env`` names (else ``SN46_ENV``, else local)."""
    from ..config import load_settings

    return load_settings(args.env)


def _open(args: argparse.Namespace):
    """``--store`` or the environment's model store; either way with the environment's endpoint and keys."""
    from ..modelstore.store import ModelStore

    settings = _settings(args)
    return ModelStore(settings.open_store(args.store) if args.store else settings.open_model_store())


def _emit(args: argparse.Namespace, document: Any, text: str | None = None) -> None:
    if args.json:
        json.dump(document, sys.stdout, indent=2, sort_keys=False, default=str)
        sys.stdout.write("\n")
    else:
        print(text if text is not None else json.dumps(document, indent=2, default=str))


def _counter_list(text: str) -> list[int]:
    from ..modelstore.record import parse_version

    try:
        return sorted({parse_version(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _meta(items: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {item!r}: use KEY=VALUE")
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value
    return meta


def _record_doc(store, record) -> dict[str, Any]:
    return {**record.to_dict(), "collected": store.is_collected(record.counter)}


def _line(record, collected: bool = False) -> str:
    mark = " [collected]" if collected else ""
    return f"{record.version_id}  {record.timestamp}  {record.record_hash[:12]}  {record.message}{mark}"


# -- handlers -------------------------------------------------------------------
def _commit(args: argparse.Namespace) -> int:
    store = _open(args)
    record = store.commit(args.path, message=args.message, metadata=_meta(args.meta), retries=args.retries)
    doc = {k: record.to_dict()[k] for k in ("version_id", "counter", "record_hash", "content_hash", "parent")}
    _emit(args, doc, f"committed {record.version_id} ({record.record_hash[:12]})")
    return EXIT_OK


def _head(args: argparse.Namespace) -> int:
    store = _open(args)
    record = store.head()
    if record is None:
        _emit(args, None, "the store has no versions yet")
        return EXIT_OK
    doc = _record_doc(store, record)
    _emit(args, doc, _line(record, doc["collected"]))
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    store = _open(args)
    record = store.get(args.version)
    _emit(args, _record_doc(store, record))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    store = _open(args)
    collected = store.collected_counters()
    records = store.list_versions()
    docs = [{**r.to_dict(), "collected": r.counter in collected} for r in records]
    _emit(args, docs, "\n".join(_line(r, r.counter in collected) for r in records) or "no versions")
    return EXIT_OK


def _checkout(args: argparse.Namespace) -> int:
    store = _open(args)
    record = store.checkout(args.version, args.dest)
    doc = {"version_id": record.version_id, "dest": args.dest, "files": sorted(record.manifest)}
    _emit(
        args, doc, f"checked out {record.version_id} into {args.dest} ({len(record.manifest)} files verified)"
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from ..modelstore.verify import verify

    report = verify(_open(args), deep=args.deep)
    doc = {k: report.to_dict()[k] for k in ("valid", "versions", "first_bad", "kind", "detail")}
    doc.update({k: v for k, v in report.to_dict().items() if k not in doc})
    text = (
        f"valid: {report.versions} versions ({report.live} live, {report.collected} collected)"
        if report.valid
        else f"CORRUPT at {report.first_bad}: {report.kind}: {report.detail}"
    )
    _emit(args, doc, text)
    return EXIT_OK if report.valid else EXIT_FOUND


def _find_corruption(args: argparse.Namespace) -> int:
    from ..modelstore.verify import verify

    report = verify(_open(args), deep=not args.shallow)
    doc = {
        "corrupted": not report.valid,
        "version_id": report.first_bad,
        "counter": report.counter,
        "kind": report.kind,
        "detail": report.detail,
    }
    _emit(args, doc, "clean" if report.valid else f"{report.first_bad}: {report.kind}: {report.detail}")
    return EXIT_OK if report.valid else EXIT_FOUND


def _gc(args: argparse.Namespace) -> int:
    from ..modelstore.gc import collect_garbage

    keep, keep_min, protect = args.keep_versions, args.keep_min_versions, args.protect
    if keep is None or keep_min is None or protect is None:
        policy = _settings(args).gc
        keep = policy.keep_versions if keep is None else keep
        keep_min = policy.keep_min_versions if keep_min is None else keep_min
        protect = list(policy.protect_tags) if protect is None else protect
    result = collect_garbage(
        _open(args),
        keep_versions=keep,
        keep_min_versions=keep_min,
        protect=protect,
        dry_run=args.dry_run,
        orphan_grace=args.orphan_grace,
    )
    verb = "would collect" if result.dry_run else "collected"
    _emit(
        args,
        result.to_dict(),
        f"{verb} {len(result.collected)} versions {result.collected}, {len(result.live)} live, "
        f"{result.bytes_freed} bytes freed, {result.orphans_deleted} orphan blobs, "
        f"{result.leftovers} unfinished writes ({result.leftover_bytes} bytes)",
    )
    return EXIT_OK


def _pin(args: argparse.Namespace) -> int:
    from ..modelstore.pins import set_pin

    if args.track == (args.version is not None):
        raise UsageError("give a VERSION or --track (not both)")
    pin = set_pin(_open(args), args.name, args.version, track=args.track)
    target = "the head" if pin.mode == "tracking" else pin.version_id
    _emit(args, pin.to_dict(), f"pin {pin.name} -> {target} (revision {pin.revision})")
    return EXIT_OK


def _pins(args: argparse.Namespace) -> int:
    from ..modelstore.pins import read_pins

    pins = read_pins(_open(args))
    doc = {name: pin.to_dict() for name, pin in sorted(pins.items())}
    text = "\n".join(f"{n}: {p.mode} {p.version_id or 'head'}" for n, p in sorted(pins.items())) or "no pins"
    _emit(args, doc, text)
    return EXIT_OK


def _pin_history(args: argparse.Namespace) -> int:
    from ..modelstore.pins import pin_history

    history = [e.to_dict() for e in pin_history(_open(args), args.name)]
    _emit(args, history)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from ..modelstore.transfer import export_versions

    result = export_versions(_open(args), args.versions, args.output)
    _emit(args, result.to_dict(), f"exported {len(result.versions)} versions to {args.output}")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from ..modelstore.transfer import import_archive

    result = import_archive(_open(args), args.archive)
    _emit(
        args,
        result.to_dict(),
        f"imported {len(result.records_written)} records, {result.blobs_written} blobs",
    )
    return EXIT_OK


def _replication(args: argparse.Namespace) -> int:
    from ..modelstore.replication import check_replication
    from ..modelstore.store import ModelStore

    primary = _open(args)
    settings = _settings(args)
    replica = ModelStore(settings.open_store(args.replica) if args.replica else settings.open_replica_store())
    report = check_replication(primary, replica, repair=args.repair, deep=args.deep)
    corrupt = (
        f", {len(report.corrupt_records)} records and {len(report.corrupt_blobs)} blobs corrupt"
        if report.deep
        else ""
    )
    text = (
        "in sync"
        if report.in_sync
        else f"NOT in sync: {len(report.missing_versions)} versions and "
        f"{len(report.missing_blobs)} blobs missing"
        f"{corrupt}, lag {report.lag_versions} versions / {report.lag_seconds:.0f} s"
    )
    _emit(args, report.to_dict(), text)
    return EXIT_OK if report.in_sync else EXIT_FOUND


def _stats(args: argparse.Namespace) -> int:
    from ..modelstore.stats import store_stats

    store = _open(args)
    stats = store_stats(store)
    if args.prometheus:
        from ..modelstore.metrics import prometheus_text

        sys.stdout.write(prometheus_text(stats, labels={"store": store.url}))
        return EXIT_OK
    _emit(args, stats.to_dict())
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from ..modelstore.audit import events

    _emit(args, [e.to_dict() for e in events(_open(args).objects, args.kind)])
    return EXIT_OK
