"""Helpers of the secrets tests (a module, not conftest, so tests can import them by a unique name)."""

from __future__ import annotations

import traceback
from typing import Any

#: The region of the test environment and of its secrets.
REGION = "us-east-2"


def store_statements(bucket: str) -> list[dict[str, Any]]:
    """Full access to one bucket, as the object-store keys of an environment have."""
    return [
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        }
    ]


#: May read secrets and do nothing else. moto checks Secrets Manager actions, but against resource
#: "*" only, so this cannot name the secrets as a real task role's policy does (docs/secrets.md).
READER_STATEMENTS = [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]


def full_text(exc: BaseException) -> str:
    """An exception as a traceback prints it, every chained cause included."""
    return "".join(traceback.format_exception(exc))
