"""The ``sn46`` command: one module per command group, registered here.

Each module adds its group through ``register(subparsers)`` and imports
nothing heavy at load time (no dagster, torch or pyarrow), so ``sn46 --help``
answers at once; the work happens inside the handlers, which import the
libraries they drive.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from ..errors import EXIT_USAGE

#: Modules that add a subcommand, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "sn46_pipelines.cli.demo",
    "sn46_pipelines.cli.pipeline",
    "sn46_pipelines.cli.query",
    "sn46_pipelines.cli.store",
    "sn46_pipelines.cli.gateway",
    "sn46_pipelines.cli.serve",
    "sn46_pipelines.cli.config",
    "sn46_pipelines.cli.infra",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sn46",
        description="Data and model platform for Bittensor Subnet 46 (RESI).",
    )
    parser.add_argument(
        "--env",
        help="environment: local (default), dev, test, staging or prod; overrides SN46_ENV. Each "
        "command loads this environment's settings and hands the name to the processes it starts",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # A command group given without its subcommand: show that group's help.
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return EXIT_USAGE
    return run_handler(handler, args)


def guarded(group: str, handler: Handler) -> Handler:
    """``handler`` with the project's errors answered as one line on stderr (and, under ``--json``,
    an error document on stdout, so a script reading stdout sees why) and the exit code their
    class maps to (:func:`~sn46_pipelines.errors.exit_code`).

    ``OSError`` counts as the user's (a path that does not exist, a folder that is not writable);
    anything else is a bug and keeps its traceback.
    """

    def run(args: argparse.Namespace) -> int:
        from ..errors import SN46Error, exit_code

        try:
            return handler(args)
        except (SN46Error, OSError) as exc:
            message = str(exc) or type(exc).__name__
            if getattr(args, "json", False):
                print(json.dumps({"error": message, "type": type(exc).__name__}))
            print(f"sn46 {group}: error: {message}", file=sys.stderr)
            return exit_code(exc) or EXIT_USAGE

    return run


def run_handler(handler, args: argparse.Namespace) -> int:
    """Run one handler, turning the project's errors into one line and the exit code their class maps to.

    Anything else is a bug and keeps its traceback (:func:`~sn46_pipelines.errors.exit_code`).
    """
    from ..errors import SN46Error, exit_code

    try:
        return int(handler(args) or 0)
    except SN46Error as exc:
        print(f"sn46: error: {exc}", file=sys.stderr)
        return exit_code(exc) or EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``sn46 ... | head``): stop quietly, as Unix tools do.
        sys.stderr.close()
        return 0
