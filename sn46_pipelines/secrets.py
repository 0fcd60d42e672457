"""The platform's secrets: where each one lives, and reading them without ever showing a value.

Three secrets exist; ``docs/secrets.md`` gives their Secrets Manager ids and JSON shapes.

- ``object-store``: the keys of the S3 client of every store. Only that client
  may use them, so they cannot be the process-wide ``AWS_ACCESS_KEY_ID``
  variables, which would also replace the task role for SQS, ECS and Secrets
  Manager calls. With ``secrets.source: aws-secrets-manager`` this process
  reads them itself (:func:`object_store_credentials`); otherwise boto3's
  default chain applies (variables, profile, instance or task role).
- ``redis`` (the gateway's ``REDIS_URL``) and ``dagster-postgres`` (Dagster's
  ``DAGSTER_PG_PASSWORD``): their one reader takes a variable, so the container
  platform injects them from Secrets Manager (an ECS task definition's
  ``secrets``, a Kubernetes Secret) and the process needs no Secrets Manager
  permission for them. ``sn46 config --check-secrets`` still reads them, to
  prove they exist and hold the key the platform will ask for.

A value is only ever held as :class:`~pydantic.SecretStr`, which prints as
``**********``, and no error carries one: errors name the secret id and the key.
This module never imports Dagster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from .errors import ConfigError, SN46Error, TransientError

if TYPE_CHECKING:
    from .objectstore.s3 import S3Credentials

SecretSource = Literal["env", "aws-secrets-manager"]
AWS_SECRETS_MANAGER: SecretSource = "aws-secrets-manager"


class SecretError(SN46Error):
    """A secret cannot be read or has the wrong shape; the message names the secret and key, never a value.

    Every kind but :class:`SecretUnavailableError` is also a
    :class:`~sn46_pipelines.errors.ConfigError`: the deployment must be fixed,
    and asking again will not help. Only the outage may pass by itself.
    """


class SecretNotFoundError(SecretError, ConfigError):
    """No secret with that id exists (in that region)."""


class SecretAccessDeniedError(SecretError, ConfigError):
    """The caller may not read the secret, or its AWS credentials were rejected."""


class MalformedSecretError(SecretError, ConfigError):
    """The secret exists but is not the JSON object of string values it should be."""


class SecretUnavailableError(SecretError, TransientError):
    """Secrets Manager cannot be reached, or this process has no AWS credentials to ask it with."""


@dataclass(frozen=True)
class SecretSpec:
    """One named secret: its JSON keys in Secrets Manager and the variable each key stands for."""

    name: str
    variables: Mapping[str, str]
    """JSON key -> the variable that holds the same value when the secret comes from the environment."""
    optional: frozenset[str]
    injected: bool
    """The platform turns it into variables; this process never reads it from Secrets Manager."""
    reader: str
    """Who uses it, for ``sn46 config``."""
    when_unset: str
    """What happens when its variables are not set."""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(key for key in self.variables if key not in self.optional)


OBJECT_STORE = SecretSpec(
    name="object-store",
    variables={
        "aws_access_key_id": "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
        "aws_session_token": "AWS_SESSION_TOKEN",
    },
    optional=frozenset({"aws_session_token"}),
    injected=False,
    reader="the S3 client of every store",
    when_unset="boto3 uses a profile or the instance or task role",
)
REDIS = SecretSpec(
    name="redis",
    variables={"url": "REDIS_URL"},
    optional=frozenset(),
    injected=True,
    reader="the gateway's quota ledger",
    when_unset="the gateway keeps its quotas in SQLite",
)
DAGSTER_POSTGRES = SecretSpec(
    name="dagster-postgres",
    variables={"password": "DAGSTER_PG_PASSWORD"},
    optional=frozenset(),
    injected=True,
    reader="Dagster's Postgres storage (deploy/dagster.prod.yaml)",
    when_unset="needed only where dagster.yaml uses Postgres",
)
#: Every secret of the platform, in the order ``sn46 config`` lists them.
SECRETS = (OBJECT_STORE, REDIS, DAGSTER_POSTGRES)

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
_REJECTED_CREDENTIALS = {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
_DENIED = {"AccessDeniedException", "AccessDenied", "DecryptionFailure"}


def read_secret(secret_id: str, spec: SecretSpec, *, region: str | None) -> dict[str, SecretStr]:
    """Read ``secret_id`` from AWS Secrets Manager and check that it holds ``spec``'s keys.

    The client is boto3's: credentials from its default chain (task role,
    profile, variables), the endpoint from ``AWS_ENDPOINT_URL_SECRETS_MANAGER``
    or ``AWS_ENDPOINT_URL`` when set, so LocalStack and moto work as AWS does.
    Returns the spec's keys that are present (every required one is).
    """
    return _parse(_secret_string(secret_id, region), secret_id, spec)


def object_store_credentials(secret_id: str, *, region: str | None) -> S3Credentials:
    """The object store's keys from Secrets Manager secret ``secret_id`` (see :data:`OBJECT_STORE`)."""
    from .objectstore.s3 import S3Credentials

    values = read_secret(secret_id, OBJECT_STORE, region=region)
    return S3Credentials(
        access_key_id=values["aws_access_key_id"].get_secret_value(),
        secret_access_key=values["aws_secret_access_key"],
        session_token=values.get("aws_session_token"),
        origin=f"AWS Secrets Manager secret {secret_id!r}",
    )


def describe(spec: SecretSpec, secret_id: str | None, *, region: str) -> str:
    """Where ``spec``'s value comes from, never the value: one line of ``sn46 config``.

    ``secret_id`` is the Secrets Manager id when the environment takes the
    secret from there, else None (variables). Variables are reported as set
    or not set, so an operator sees a missing injection at once.
    """
    names = [spec.variables[key] for key in spec.required]
    is_set = all(os.environ.get(name) for name in names)
    variables = f"variable{'s' if len(names) > 1 else ''} {', '.join(names)}"
    state = "set" if is_set else f"not set: {spec.when_unset}"
    if secret_id is None:
        return f"{variables} ({state})"
    where = f"AWS Secrets Manager {secret_id!r} ({region})"
    if not spec.injected:
        return f"{where}, read by this process for {spec.reader}"
    keys = f"key{'s' if len(names) > 1 else ''} {', '.join(repr(key) for key in spec.required)}"
    injected = f"injected by the platform from {where}, {keys}"
    return f"{variables} ({'set' if is_set else 'not set'}) for {spec.reader}, {injected}"


def _client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=10)
    return boto3.session.Session().client("secretsmanager", region_name=region, config=config)


def _secret_string(secret_id: str, region: str | None) -> str:
    """The secret's string, every failure turned into a :class:`SecretError` that names ``secret_id``."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = f"AWS Secrets Manager ({region or 'default region'})"
    try:
        response = _client(region).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        raise _translate(exc, secret_id, where) from exc
    except NoCredentialsError as exc:
        raise SecretUnavailableError(
            f"secret {secret_id!r}: no AWS credentials to ask {where} with (task role, profile or variables)"
        ) from exc
    except BotoCoreError as exc:
        raise SecretUnavailableError(f"secret {secret_id!r}: cannot reach {where}: {exc}") from exc
    if "SecretString" not in response:
        raise MalformedSecretError(f"secret {secret_id!r} holds binary data; expected a JSON object string")
    return response["SecretString"]


#: Secrets Manager's answers that mean "not now": asking again later is the fix.
_OUTAGES = frozenset({"ThrottlingException", "InternalServiceError", "InternalFailure", "ServiceUnavailable"})


def _translate(exc: Any, secret_id: str, where: str) -> SecretError:
    """A Secrets Manager error as one of ours. AWS's error messages never contain the value."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ResourceNotFoundException":
        return SecretNotFoundError(f"secret {secret_id!r} not found in {where}")
    if code in _REJECTED_CREDENTIALS:
        return SecretAccessDeniedError(
            f"cannot read secret {secret_id!r}: {where} rejected this process's AWS credentials ({code})"
        )
    if code in _DENIED or status == 403:
        return SecretAccessDeniedError(
            f"access denied reading secret {secret_id!r} from {where} ({code}): the caller needs "
            "secretsmanager:GetSecretValue on it, and kms:Decrypt if a customer-managed key encrypts it"
        )
    message = f"cannot read secret {secret_id!r} from {where}: {code}: {error.get('Message', '')}"
    if code in _OUTAGES or (isinstance(status, int) and status >= 500):
        return SecretUnavailableError(message)
    return SecretError(message)


def _parse(text: str, secret_id: str, spec: SecretSpec) -> dict[str, SecretStr]:
    expected = f"an object with keys {', '.join(spec.required)}"
    try:
        data = json.loads(text)
    except ValueError:
        raise MalformedSecretError(f"secret {secret_id!r} is not JSON; expected {expected}") from None
    if not isinstance(data, dict):
        kind = _JSON_TYPES.get(type(data), "null")
        raise MalformedSecretError(f"secret {secret_id!r} is a JSON {kind}; expected {expected}")
    values: dict[str, SecretStr] = {}
    for key in spec.variables:
        if key not in data:
            if key in spec.optional:
                continue
            hint = f" (it has {key.upper()!r}: the keys are lower case)" if key.upper() in data else ""
            raise MalformedSecretError(f"secret {secret_id!r} has no key {key!r}{hint}; expected {expected}")
        value = data[key]
        if not isinstance(value, str) or not value:
            raise MalformedSecretError(f"key {key!r} of secret {secret_id!r} must be a non-empty string")
        values[key] = SecretStr(value)
    return values
