"""``python -m sn46_pipelines.gateway``: ``sn46 gateway`` for slim images without the full CLI."""

from __future__ import annotations

import argparse
import sys

from ..cli import run_handler
from ..cli.gateway import add_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sn46_pipelines.gateway", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
