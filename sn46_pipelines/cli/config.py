"""``sn46 config``: show the resolved settings of an environment and where each secret comes from.

Secrets are shown by where they live (a variable, a Secrets Manager id),
never by value; ``--check-secrets`` reads the Secrets Manager ones to prove
they exist and hold their keys, and still prints no value.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the environment's resolved settings",
        description="Print the settings of the selected environment after variables are applied, "
        "and where each secret comes from (never its value).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--check-secrets",
        action="store_true",
        help="read each secret this environment takes from AWS Secrets Manager and check its keys; "
        "exit 2 if one fails",
    )
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from ..secrets import SECRETS, describe

    settings = load_settings(args.env)
    sources = {
        spec.name: describe(spec, settings.secrets.secret_id(spec.name), region=settings.region)
        for spec in SECRETS
    }
    checks = _check_secrets(settings) if args.check_secrets else {}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    if args.json:
        doc = {**settings.model_dump(mode="json"), "secret_sources": sources}
        if args.check_secrets:
            doc["secret_checks"] = {name: {"ok": ok, "detail": text} for name, (ok, text) in checks.items()}
        print(json.dumps(doc, indent=2))
    else:
        for key, value in settings.model_dump(mode="json").items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            print(f"{key:<14} {value}")
        _print_table("secret sources", sources)
        if args.check_secrets:
            _print_table("secret checks", {name: detail for name, (_, detail) in checks.items()})
    if failed:
        print(f"sn46: error: secret check failed for {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0


def _check_secrets(settings: Settings) -> dict[str, tuple[bool, str]]:
    """Read every secret the environment takes from Secrets Manager: (ok, what was found or the error)."""
    from ..secrets import SECRETS, SecretError, read_secret

    results = {}
    for spec in SECRETS:
        secret_id = settings.secrets.secret_id(spec.name)
        if secret_id is None:
            results[spec.name] = (True, "not read: it comes from variables")
            continue
        try:
            keys = read_secret(secret_id, spec, region=settings.region)
        except SecretError as exc:
            results[spec.name] = (False, f"FAILED: {exc}")
        else:
            results[spec.name] = (True, f"ok: {secret_id!r} has keys {', '.join(keys)}")
    return results


def _print_table(title: str, rows: dict[str, str]) -> None:
    print(title)
    for name, text in rows.items():
        print(f"  {name:<17} {text}")
