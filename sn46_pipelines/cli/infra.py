"""``sn46 infra``: bucket set-up and least-privilege IAM policies for an environment.

Exit codes: 0 done (or nothing to change), 1 something to report (``--diff``
found drift, an applied setting read back differently, ``--check`` denied),
2 the command could not run (local file stores, missing bucket, a lifecycle
rule reaching the model store, a denied or unsupported call). With ``--json``
stdout holds exactly one JSON document, errors included (``{"error": ...}``).

Only the standard library is imported at load time so ``sn46 --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..infra import BucketResult, EnvironmentPlan

from ..errors import EXIT_FOUND, EXIT_OK, UsageError
from . import guarded

#: Mirrors ``infra.bucket.SETTINGS`` (kept here so ``--help`` imports nothing).
BUCKET_SETTINGS = ("encryption", "public-access-block", "lifecycle", "cors", "versioning")
#: Mirrors ``infra.iam.ROLES``.
ROLE_NAMES = ("training", "inference", "gc", "replication", "gateway", "pipeline", "admin", "execution")


def register(subparsers: Any) -> None:
    """Add the ``infra`` command group to the ``sn46`` parser."""
    parser = subparsers.add_parser(
        "infra",
        help="bucket encryption, lifecycle, CORS and versioning; least-privilege IAM policies",
        description="Plan and apply an environment's bucket settings, and print its IAM policies "
        "(docs/infra.md).",
    )
    parser.set_defaults(group_parser=parser, handler=None)
    commands = parser.add_subparsers(dest="infra_command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env",
        default=argparse.SUPPRESS,
        help="environment: dev, test, staging or prod (overrides SN46_ENV)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument(
        "--kms-key",
        metavar="ARN",
        help="encrypt with this KMS key (SSE-KMS) instead of SSE-S3; roles get kms:Decrypt on it",
    )

    p = commands.add_parser(
        "bucket",
        parents=[common],
        help="print (and with --apply, apply) the bucket settings",
        description="Print the plan for the environment's buckets: default encryption, public access "
        "block, lifecycle, CORS for browser uploads and versioning. Nothing is written "
        "without --apply.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="write what differs, then read it back")
    mode.add_argument(
        "--diff",
        action="store_true",
        help="compare with the buckets without writing (exit 1 if anything would change)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        dest="cors_origins",
        help="web origin allowed to upload from a browser (repeatable; replaces the env default)",
    )
    p.add_argument("--no-cors", action="store_true", help="plan no CORS rule (removes ours if present)")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=BUCKET_SETTINGS,
        metavar="SETTING",
        help=f"leave one setting alone, e.g. on a server without it ({', '.join(BUCKET_SETTINGS)})",
    )
    p.set_defaults(handler=guarded("infra", _bucket))

    p = commands.add_parser(
        "iam",
        parents=[common],
        help="print least-privilege IAM policy documents for each role",
        description="Print the IAM policy document of each role (or one) for the environment's buckets.",
    )
    p.add_argument("--role", choices=ROLE_NAMES, help="only this role")
    p.add_argument(
        "--account-id", metavar="ID", help="AWS account of the secrets and queue ARNs (default '*')"
    )
    p.add_argument(
        "--compute-logs-bucket",
        metavar="BUCKET",
        default=os.environ.get("DAGSTER_COMPUTE_LOGS_BUCKET") or None,
        help="bucket of Dagster's step logs, for the pipeline role (default: $DAGSTER_COMPUTE_LOGS_BUCKET)",
    )
    p.add_argument(
        "--document",
        action="store_true",
        help="print only the policy document of --role (for aws iam create-policy)",
    )
    p.add_argument(
        "--check",
        nargs=2,
        metavar=("ACTION", "RESOURCE"),
        help="say whether --role's policy allows ACTION on the RESOURCE ARN (exit 1 if not)",
    )
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a condition key of the --check request, e.g. s3:prefix=models/ (repeatable)",
    )
    p.set_defaults(handler=guarded("infra", _iam))


# -- sn46 infra bucket ---------------------------------------------------------------------------


def _bucket(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from ..infra import plan_environment, reconcile

    origins = () if args.no_cors else tuple(args.cors_origins) if args.cors_origins else None
    plan = plan_environment(load_settings(args.env), kms_key=args.kms_key, cors_origins=origins)
    mode = "apply" if args.apply else "diff" if args.diff else "plan"
    results = reconcile(plan, apply=args.apply, skip=args.skip) if mode != "plan" else []
    by_bucket = {r.bucket: r for r in results}
    if args.json:
        doc = {**plan.to_dict(), "mode": mode}
        for bucket in doc["buckets"]:
            if bucket["bucket"] in by_bucket:
                bucket["result"] = by_bucket[bucket["bucket"]].to_dict()
        print(json.dumps(doc, indent=2))
    else:
        _print_bucket_plan(plan, mode, by_bucket)
    if any(r.confirmed is False for r in results) or (mode == "diff" and any(r.changed for r in results)):
        return EXIT_FOUND
    return EXIT_OK


def _print_bucket_plan(plan: EnvironmentPlan, mode: str, results: dict[str, BucketResult]) -> None:
    heading = {
        "plan": "plan only, nothing read or written (--diff compares with the buckets, --apply writes)",
        "diff": "compared with the buckets, nothing written",
        "apply": "applied",
    }[mode]
    print(f"environment {plan.env} ({plan.region}), {len(plan.buckets)} bucket(s): {heading}")
    for bucket in plan.buckets:
        result = results.get(bucket.bucket)
        status = {s.setting: s.status for s in result.settings} if result else {}
        print(f"\ns3://{bucket.bucket}")
        print(f"  holds: {'; '.join(f'{s.name} {s.url}' for s in bucket.stores)}")
        cors = (
            f"POST, PUT from {', '.join(bucket.cors.origins)}"
            if bucket.cors
            else "no rule (no browser origins; --cors-origin adds some)"
        )
        versioning = (
            f"Enabled: {bucket.versioning_why}"
            if bucket.versioning
            else f"left as is: {bucket.versioning_why}"
        )
        lines = {
            "encryption": [bucket.encryption.describe()],
            "public-access-block": ["all four blocks on: nothing is ever public, access is by presigned URL"],
            "lifecycle": [
                f"{r.id} ({r.prefix or 'whole bucket'}): {'; '.join(r.actions())}" for r in bucket.lifecycle
            ],
            "cors": [cors],
            "versioning": [versioning],
        }
        width = 15 if status else 0
        for setting in BUCKET_SETTINGS:
            tag = f"[{status[setting]}]" if setting in status else ""
            first, *rest = lines[setting]
            print(f"  {setting:<20} {tag:<{width}}{first}")
            for line in rest:
                print(f"  {'':<20} {'':<{width}}{line}")
        if result and result.confirmed:
            print(f"  confirmed: every managed setting of s3://{bucket.bucket} reads back as planned")
        for mismatch in result.mismatches if result else ():
            print(f"  MISMATCH: {mismatch}")


# -- sn46 infra iam ------------------------------------------------------------------------------


def _iam(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from ..infra import InfraError, Request, build_policies, evaluate

    if (args.document or args.check) and not args.role:
        raise InfraError("--document and --check need --role")
    policies = build_policies(
        load_settings(args.env),
        account_id=args.account_id,
        kms_key=args.kms_key,
        roles=(args.role,) if args.role else None,
        compute_logs_bucket=args.compute_logs_bucket,
    )
    if args.check:
        request = Request(args.check[0], args.check[1], dict(_pair(c) for c in args.context))
        decision = evaluate(policies.policies[args.role], request)
        if args.json:
            print(
                json.dumps(
                    {
                        "role": args.role,
                        "action": request.action,
                        "resource": request.resource,
                        "context": dict(request.context),
                        "allowed": decision.allowed,
                        "statement": decision.statement,
                    }
                )
            )
        else:
            print(f"{args.role}: {decision.describe(request)}")
        return EXIT_OK if decision.allowed else EXIT_FOUND
    if args.document:
        print(json.dumps(policies.policies[args.role], indent=2))
    elif args.json:
        print(json.dumps(policies.to_dict(), indent=2))
    else:
        for role, doc in policies.to_dict()["roles"].items():
            print(f"# {role}: {doc['description']}")
            print(json.dumps(doc["policy"], indent=2))
            print()
        for note in policies.notes:
            print(f"# note: {note}")
    return EXIT_OK


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--context {text!r}: expected KEY=VALUE, e.g. s3:prefix=models/")
    return key, value
