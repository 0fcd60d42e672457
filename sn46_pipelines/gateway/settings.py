"""Gateway settings: the environment's config, then the gateway's classic variables, then ours.

Deployed gateways of SN46 are configured with a classic set of variables
(``S3_BUCKET``, ``S3_REGION``, ``NET_UID``, ``BT_NETWORK``, ``DAILY_LIMIT_*``,
``TOTAL_DAILY_LIMIT``, ``REDIS_URL``; docs/gateway.md lists them). Those keep
working unchanged and override the environment file loaded by
:func:`sn46_pipelines.config.load_settings`; every other setting is an
``SN46_GATEWAY_*`` variable. Each field declares its variable, default and
validation with :func:`~sn46_pipelines.config.env_field`, like every settings
tree of the project, and a bad value is reported the same way: its variable,
what is wrong and where it came from, so an operator knows what to fix. An
error never repeats ``REDIS_URL``'s value, which may hold the Redis password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticUndefined

from ..config import (
    CommaList,
    ConfigError,
    Origins,
    Settings,
    SettingsModel,
    describe,
    env_field,
    load_settings,
    problem,
    project_home,
    read_variables,
    variables,
)
from .metagraph import StakeMeasure, ValidatorRule

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")

#: SigV4 presigned URLs and POST policies are valid for at most 7 days.
_SIGV4_MAX_S = 7 * 86400
#: S3 takes at most 5 GiB in one POST or PUT.
_S3_MAX_SINGLE_UPLOAD = 5 * 1024**3


def _default_state_db() -> Path:
    return project_home() / ".sn46" / "gateway" / "state.sqlite3"


class GatewaySettings(SettingsModel):
    """Everything the gateway needs, validated. Build it with :func:`load_gateway_settings`.

    Fields without a default come from the environment's config; docs/gateway.md gives each
    default's reason. The grant defaults are the ones today's clients were written against (the
    reference SN46 API's).
    """

    data_store: str
    """``s3://bucket[/prefix]``: where miners upload (``data/hotkey=.../``) and validators read."""
    region: str = env_field("S3_REGION")
    endpoint_url: str | None
    netuid: int = env_field("NET_UID", ge=0, le=65535)
    network: str = env_field("BT_NETWORK", min_length=1)
    per_miner_limit: int = env_field("DAILY_LIMIT_PER_MINER", ge=1)
    per_validator_limit: int = env_field("DAILY_LIMIT_PER_VALIDATOR", ge=1)
    total_limit: int = env_field("TOTAL_DAILY_LIMIT", ge=1)
    redis_url: str | None = env_field("REDIS_URL", None, secret=True, repr=False)
    """Shared replay and quota state for all workers; None selects the SQLite file below.
    Out of the repr: the URL may hold the Redis password, and a settings object ends up in logs."""
    state_db: Path = env_field("SN46_GATEWAY_STATE_DB", default_factory=_default_state_db)
    metagraph_file: Path | None = env_field("SN46_METAGRAPH_FILE", None)
    """Offline metagraph snapshot (JSON); None syncs from the chain instead."""
    metagraph_refresh_s: float = env_field("SN46_METAGRAPH_REFRESH_S", 300.0, ge=1.0)
    # The validator rule (validator_rule): permit required, which stake, and the threshold.
    validator_permit: bool = env_field("SN46_GATEWAY_VALIDATOR_PERMIT", True)
    validator_stake: StakeMeasure = env_field("SN46_GATEWAY_VALIDATOR_STAKE", "alpha")
    min_validator_stake: float = env_field("SN46_GATEWAY_MIN_VALIDATOR_STAKE", 20_000.0, ge=0.0)
    max_age_s: int = env_field("SN46_GATEWAY_MAX_AGE_S", 300, ge=1, le=3600)
    """Legacy commitments are accepted this many seconds after their timestamp..."""
    max_skew_s: int = env_field("SN46_GATEWAY_MAX_SKEW_S", 60, ge=0, le=600)
    """...and this many seconds before it (client clocks run fast)."""
    gateway_hotkey: str | None = env_field("SN46_GATEWAY_HOTKEY", None)
    """The gateway's own hotkey: btauth/1 requests must be bound to it (None disables btauth)."""
    upload_expiry_s: int = env_field("SN46_GATEWAY_UPLOAD_EXPIRY_S", 86_400, ge=60, le=_SIGV4_MAX_S)
    """Lifetime of an upload grant (POST policy and the folder's listing URL), at most. One grant
    serves a miner's whole upload run (S3PartitionedUploader asks once per run)."""
    url_expiry_s: int = env_field("SN46_GATEWAY_URL_EXPIRY_S", 86_400, ge=60, le=_SIGV4_MAX_S)
    """Lifetime of the validators' listing and download URLs, at most. Validators keep a grant
    while more than 4,200 s of it remain: 24 h lets one grant last ~23 h."""
    upload_min_bytes: int = env_field("SN46_GATEWAY_UPLOAD_MIN_BYTES", 1, ge=0)
    """Size range of one uploaded object (the POST policy's ``content-length-range``). Only empty
    objects are refused: a one-listing zipcode document can be under 1 KiB."""
    upload_max_bytes: int = env_field(
        "SN46_GATEWAY_UPLOAD_MAX_BYTES", _S3_MAX_SINGLE_UPLOAD, ge=1, le=_S3_MAX_SINGLE_UPLOAD
    )
    max_body_bytes: int = env_field("SN46_GATEWAY_MAX_BODY_BYTES", 1024**2, ge=1024, le=64 * 1024**2)
    max_file_keys: int = env_field("SN46_GATEWAY_MAX_FILE_KEYS", 1000, ge=1, le=10_000)
    cors_origins: CommaList = env_field("SN46_GATEWAY_CORS_ORIGINS", ())
    environment: Settings = Field(repr=False)
    """The environment these settings were layered on: its ``secrets`` section says where the
    store's keys come from (:meth:`~sn46_pipelines.config.Settings.object_store_credentials`)."""

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db, rediss://... or unix:///path")
        return value

    @field_validator("gateway_hotkey")
    @classmethod
    def _hotkey(cls, value: str | None) -> str | None:
        from .auth import is_ss58

        if value is not None and not is_ss58(value):
            raise ValueError("not an ss58 address")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        origins = tuple(origin.rstrip("/") for origin in origins)
        for origin in origins:
            if origin == "*" or not re.fullmatch(r"https?://[^\s/]+", origin):
                raise ValueError(
                    f"expected origins like https://example.org ('*' is not allowed), got {origin!r}"
                )
        return origins

    @model_validator(mode="after")
    def _presignable(self) -> GatewaySettings:
        # Presigned POSTs and URLs need an S3 API (AWS, MinIO or moto): a folder cannot hand out grants.
        if not self.data_store.startswith("s3://"):
            raise ValueError(
                f"the gateway needs an S3 data store to presign uploads, got {self.data_store!r}: "
                "set SN46_DATA_STORE=s3://bucket or S3_BUCKET (AWS_ENDPOINT_URL for MinIO or moto)"
            )
        if self.upload_min_bytes > self.upload_max_bytes:
            raise ValueError(
                f"SN46_GATEWAY_UPLOAD_MIN_BYTES ({self.upload_min_bytes}) exceeds "
                f"SN46_GATEWAY_UPLOAD_MAX_BYTES ({self.upload_max_bytes})"
            )
        return self

    @property
    def bucket(self) -> str:
        return self.data_store.removeprefix("s3://").split("/", 1)[0]

    @property
    def validator_rule(self) -> ValidatorRule:
        return ValidatorRule(self.validator_permit, self.validator_stake, self.min_validator_stake)


#: Every field a variable sets, classic and ``SN46_*`` alike.
_VARIABLES = variables(GatewaySettings)

#: The gateway's own variables (docs/gateway.md's table): variable -> (field, type, default), the
#: default None where it is computed when the settings load.
GATEWAY_VARIABLES: dict[str, tuple[str, Any, Any]] = {
    variable.name: (
        name,
        GatewaySettings.model_fields[name].annotation,
        None
        if GatewaySettings.model_fields[name].default is PydanticUndefined
        else GatewaySettings.model_fields[name].default,
    )
    for name, variable in _VARIABLES.items()
    if variable.name.startswith("SN46_")
}


def load_gateway_settings(
    env: str | None = None, environ: Mapping[str, str] | None = None
) -> GatewaySettings:
    """Load the gateway's settings; :class:`~sn46_pipelines.config.ConfigError` names any bad variable.

    Fails when the data store is not S3: presigned POSTs and URLs need an S3
    API (AWS, MinIO or moto), a local folder cannot hand out upload grants.
    """
    environ = dict(os.environ if environ is None else environ)
    base = load_settings(env, environ)
    values: dict[str, Any] = {
        "data_store": base.data_store,
        "region": base.region,
        "endpoint_url": base.endpoint_url,
        "netuid": base.netuid,
        "network": base.network,
        "per_miner_limit": base.rate_limits.per_miner,
        "per_validator_limit": base.rate_limits.per_validator,
        "total_limit": base.rate_limits.total,
    }
    sources = dict.fromkeys(values, f"environment {base.env}")
    if bucket := environ.get("S3_BUCKET", "").strip():
        if not _BUCKET.match(bucket):
            raise ConfigError(
                problem("S3_BUCKET", "not a valid S3 bucket name", got=bucket, source="variable S3_BUCKET")
            )
        from_store = environ.get("SN46_DATA_STORE", "").strip()
        if from_store and from_store.removeprefix("s3://").split("/", 1)[0] != bucket:
            raise ConfigError(
                problem(
                    "S3_BUCKET",
                    f"SN46_DATA_STORE={from_store!r} is set too, and the two name different buckets",
                    got=bucket,
                    source="variable S3_BUCKET",
                )
            )
        if not from_store:
            values["data_store"], sources["data_store"] = f"s3://{bucket}", "variable S3_BUCKET"
    given = read_variables(_VARIABLES, environ)
    values.update(given)
    sources.update({name: _VARIABLES[name].source for name in given})
    try:
        return GatewaySettings.model_validate({**values, "environment": base})
    except ValidationError as exc:
        raise ConfigError(describe(exc, Origins(None, sources, _VARIABLES))) from None
