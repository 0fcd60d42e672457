"""``sn46 demo seed``: fill a data store with synthetic SN46 uploads (see :func:`seed_demo`).

Only argparse at import time: ``sn46 --help`` must not pay for pyarrow or bittensor.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` (seed, then run the whole pipeline) and ``demo seed`` (seed only)."""
    demo = subparsers.add_parser(
        "demo",
        help="seed synthetic SN46 uploads and run the whole pipeline on them",
        description="Seed the configured data store with the default demo uploads, then run "
        "the whole pipeline once on the local Dagster instance (the README's main job).",
    )
    demo.add_argument("--json", action="store_true", help="print seed report and pipeline summary as JSON")
    demo.add_argument("--miners", type=_positive, default=12, help="number of demo miners (default 12)")
    demo.add_argument(
        "--rounds",
        type=_positive,
        default=1,
        help="upload rounds, each landed and run through the pipeline in turn: the steady state "
        "of miners re-uploading their homes (default 1)",
    )
    demo.add_argument(
        "--interval",
        type=_duration,
        default=timedelta(hours=2),
        help="time between the rounds' uploads, like 30m, 2h or 1d (default 2h)",
    )
    demo.set_defaults(handler=run_demo)
    actions = demo.add_subparsers(dest="demo_command", metavar="{seed}")
    seed = actions.add_parser(
        "seed",
        help="write synthetic miner uploads with planted defects and a metagraph snapshot",
        description="Write deterministic synthetic SN46 miner uploads (some with planted defects) "
        "and metagraph.json into a data store. With --rounds K the miners upload K times, --interval "
        "apart and the last at --now: each round re-scrapes about 70%% of the homes of the round "
        "before, a few miners join late and one or two stop. The same --seed, --now, --rounds and "
        "--interval give byte-identical files.",
    )
    seed.add_argument("--store", help="data store URL (default: the configured data store)")
    seed.add_argument("--miners", type=_positive, default=12, help="number of demo miners (default 12)")
    seed.add_argument("--validators", type=_positive, default=3, help="number of demo validators (default 3)")
    seed.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    seed.add_argument(
        "--now",
        type=_utc_datetime,
        help="reference time listings are dated against, ISO 8601 (default: today 00:00 UTC)",
    )
    seed.add_argument("--rounds", type=_positive, default=1, help="upload rounds (default 1)")
    seed.add_argument(
        "--interval",
        type=_duration,
        default=timedelta(hours=2),
        help="time between rounds: minutes, hours or days, like 30m, 2h or 1d (default 2h)",
    )
    seed.add_argument(
        "--only-round",
        type=int,
        metavar="R",
        help="write round R alone (0 is the first), to land rounds one at a time between pipeline runs",
    )
    seed.add_argument("--json", action="store_true", help="print the full seed report as JSON")
    seed.set_defaults(handler=run_seed, parser=seed)


def run_seed(args: argparse.Namespace) -> int:
    """Seed the store and print a summary (or the JSON report); store errors go to the ``sn46`` runner."""
    from ..demo.seed import seed_demo

    if args.only_round is not None and not 0 <= args.only_round < args.rounds:
        args.parser.error(f"--only-round must be 0..{args.rounds - 1} with --rounds {args.rounds}")
    store = _demo_store(args.store, args.env)
    report = seed_demo(
        store,
        miners=args.miners,
        validators=args.validators,
        seed=args.seed,
        now=args.now,
        rounds=args.rounds,
        interval=args.interval,
        only_round=args.only_round,
    )
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``sn46 demo``: seed the configured data store, then one full pipeline pass per upload round.

    With ``--rounds K`` round r lands only after the pass over round r - 1,
    as a deployment sees miners upload every epoch; the exit status is the
    worst pass's.
    """
    from sn46_pipelines.cli.pipeline import run_pass

    from ..demo.seed import seed_demo

    store = _demo_store(None, args.env)
    status = 0
    for number in range(args.rounds):
        report = seed_demo(
            store, miners=args.miners, rounds=args.rounds, interval=args.interval, only_round=number
        )
        if not args.json:
            heading = f"round {number + 1} of {args.rounds}: " if args.rounds > 1 else ""
            print(heading + report.summary(), end="\n\n")
        before = {"round": number, "seed": report.to_dict()}
        status = max(status, run_pass(timeout=1800, as_json=args.json, before=before, env=args.env))
    return status


#: Environments whose data store holds real miners' uploads: never seeded unless --store says so.
PROTECTED_ENVIRONMENTS = ("staging", "prod")


def _demo_store(url: str | None, env: str | None):  # -> ObjectStore (imports kept lazy for a fast CLI)
    """The store to seed: ``url`` if given, else ``env``'s data store unless it is a real one.

    Either way it opens with the environment's endpoint, region and object-store keys.
    """
    from sn46_pipelines.config import ConfigError, load_settings

    settings = load_settings(env)
    if url:
        return settings.open_store(url)
    if settings.env in PROTECTED_ENVIRONMENTS:
        raise ConfigError(
            f"refusing to write synthetic uploads into the {settings.env} data store; "
            "pass --store to seed a store of your choice"
        )
    return settings.open_data_store()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _utc_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DURATION = re.compile(r"([1-9][0-9]*)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``: a whole number of minutes, hours or days, at least the seeder's minimum."""
    from ..demo.seed import MIN_INTERVAL

    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 1d")
    value = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if value < MIN_INTERVAL:
        minimum = int(MIN_INTERVAL.total_seconds() // 60)
        raise argparse.ArgumentTypeError(f"must be at least {minimum}m, not {text}")
    return value
