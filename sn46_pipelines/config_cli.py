"""``sn46 config``: show the resolved settings of an environment."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the environment's resolved settings",
        description="Print the settings of the selected environment after variables are applied.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings().model_dump(mode="json")
    if args.json:
        print(json.dumps(settings, indent=2))
        return 0
    for key, value in settings.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:<14} {value}")
    return 0
