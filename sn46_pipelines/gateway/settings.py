"""Gateway settings: the environment's config, then the gateway's classic variables, then ours.

Deployed gateways of SN46 are configured with a classic set of variables
(``S3_BUCKET``, ``S3_REGION``, ``NET_UID``, ``BT_NETWORK``, ``DAILY_LIMIT_*``,
``TOTAL_DAILY_LIMIT``, ``REDIS_URL``; docs/gateway.md lists them). Those keep
working unchanged and override the environment file loaded by
:func:`sn46_pipelines.config.load_settings`; every other setting is an
``SN46_GATEWAY_*`` variable. A bad
value names its variable, so an operator knows what to fix, and never repeats
``REDIS_URL``'s value, which may hold the Redis password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, Settings, load_settings, project_home
from .metagraph import STAKE_MEASURES, StakeMeasure, ValidatorRule

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway needs, validated."""

    #: ``s3://bucket[/prefix]``: where miners upload (``data/hotkey=.../``) and validators read.
    data_store: str
    region: str
    endpoint_url: str | None
    netuid: int
    network: str
    per_miner_limit: int
    per_validator_limit: int
    total_limit: int
    #: Shared replay and quota state for all workers; None selects the SQLite file below.
    #: Out of the repr: the URL may hold the Redis password, and a settings object ends up in logs.
    redis_url: str | None = field(repr=False)
    state_db: Path
    #: Offline metagraph snapshot (JSON); None syncs from the chain instead.
    metagraph_file: Path | None
    metagraph_refresh_s: float
    #: The validator rule (:attr:`validator_rule`): permit required, which stake, and the threshold.
    validator_permit: bool
    validator_stake: StakeMeasure
    min_validator_stake: float
    #: Legacy commitments are accepted this many seconds after their timestamp...
    max_age_s: int
    #: ...and this many seconds before it (client clocks run fast).
    max_skew_s: int
    #: The gateway's own hotkey: btauth/1 requests must be bound to it (None disables btauth).
    gateway_hotkey: str | None
    #: Lifetime of an upload grant (POST policy and the folder's listing URL), at most.
    upload_expiry_s: int
    #: Lifetime of the validators' listing and download URLs, at most.
    url_expiry_s: int
    #: Size range of one uploaded object (the POST policy's ``content-length-range``).
    upload_min_bytes: int
    upload_max_bytes: int
    max_body_bytes: int
    max_file_keys: int
    #: The environment these settings were layered on: its ``secrets`` section says where the
    #: store's keys come from (:meth:`~sn46_pipelines.config.Settings.object_store_credentials`).
    environment: Settings = field(repr=False, compare=False)
    cors_origins: tuple[str, ...] = field(default=())

    @property
    def bucket(self) -> str:
        return self.data_store.removeprefix("s3://").split("/", 1)[0]

    @property
    def validator_rule(self) -> ValidatorRule:
        return ValidatorRule(self.validator_permit, self.validator_stake, self.min_validator_stake)


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}" if high else f"must be at least {low}")
        return value

    return parse


def _float(low: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if value < low:
            raise ValueError(f"must be at least {low:g}")
        return value

    return parse


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("expected true or false")
    return value in ("true", "1", "yes")


def _stake_measure(text: str) -> StakeMeasure:
    if text not in STAKE_MEASURES:
        raise ValueError(f"expected one of {', '.join(STAKE_MEASURES)}")
    return text


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        if origin == "*" or not re.fullmatch(r"https?://[^\s/]+", origin):
            raise ValueError(f"{origin!r} is not an origin like https://example.org ('*' is not allowed)")
    return origins


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://host:port/db, rediss://... or unix:///path")
    return text


def _hotkey(text: str) -> str:
    from .auth import is_ss58

    if not is_ss58(text):
        raise ValueError("not an ss58 address")
    return text


#: SigV4 presigned URLs and POST policies are valid for at most 7 days.
_SIGV4_MAX_S = 7 * 86400
#: S3 takes at most 5 GiB in one POST or PUT.
_S3_MAX_SINGLE_UPLOAD = 5 * 1024**3

#: ``SN46_GATEWAY_*`` variables: field, parser, default. docs/gateway.md gives each default's reason; the
#: grant defaults are the ones today's clients were written against (the reference SN46 API's).
GATEWAY_VARIABLES: dict[str, tuple[str, Callable[[str], Any], Any]] = {
    "SN46_GATEWAY_STATE_DB": ("state_db", Path, None),
    "SN46_METAGRAPH_FILE": ("metagraph_file", Path, None),
    "SN46_METAGRAPH_REFRESH_S": ("metagraph_refresh_s", _float(1.0), 300.0),
    "SN46_GATEWAY_VALIDATOR_PERMIT": ("validator_permit", _bool, True),
    "SN46_GATEWAY_VALIDATOR_STAKE": ("validator_stake", _stake_measure, "alpha"),
    "SN46_GATEWAY_MIN_VALIDATOR_STAKE": ("min_validator_stake", _float(0.0), 20_000.0),
    "SN46_GATEWAY_MAX_AGE_S": ("max_age_s", _int(1, 3600), 300),
    "SN46_GATEWAY_MAX_SKEW_S": ("max_skew_s", _int(0, 600), 60),
    "SN46_GATEWAY_HOTKEY": ("gateway_hotkey", _hotkey, None),
    # One grant serves a miner's whole upload run (S3PartitionedUploader asks once per run).
    "SN46_GATEWAY_UPLOAD_EXPIRY_S": ("upload_expiry_s", _int(60, _SIGV4_MAX_S), 86_400),
    # Validators keep a grant while more than 4,200 s of it remain: 24 h lets one grant last ~23 h.
    "SN46_GATEWAY_URL_EXPIRY_S": ("url_expiry_s", _int(60, _SIGV4_MAX_S), 86_400),
    # Only empty objects are refused: a one-listing zipcode document can be under 1 KiB.
    "SN46_GATEWAY_UPLOAD_MIN_BYTES": ("upload_min_bytes", _int(0), 1),
    "SN46_GATEWAY_UPLOAD_MAX_BYTES": (
        "upload_max_bytes",
        _int(1, _S3_MAX_SINGLE_UPLOAD),
        _S3_MAX_SINGLE_UPLOAD,
    ),
    "SN46_GATEWAY_MAX_BODY_BYTES": ("max_body_bytes", _int(1024, 64 * 1024**2), 1024**2),
    "SN46_GATEWAY_MAX_FILE_KEYS": ("max_file_keys", _int(1, 10_000), 1000),
    "SN46_GATEWAY_CORS_ORIGINS": ("cors_origins", _origins, ()),
}

#: The classic gateway variables, which override the environment file.
_GUIDE: dict[str, tuple[str, Callable[[str], Any]]] = {
    "S3_REGION": ("region", str),
    "NET_UID": ("netuid", _int(0, 65535)),
    "BT_NETWORK": ("network", str),
    "DAILY_LIMIT_PER_MINER": ("per_miner_limit", _int(1)),
    "DAILY_LIMIT_PER_VALIDATOR": ("per_validator_limit", _int(1)),
    "TOTAL_DAILY_LIMIT": ("total_limit", _int(1)),
    "REDIS_URL": ("redis_url", _redis_url),
}

#: Variables whose value may hold a secret (a password inside the URL): an error never repeats it.
_HIDDEN = frozenset({"REDIS_URL"})


def _parse(environ: Mapping[str, str], var: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(environ[var])
    except (TypeError, ValueError) as exc:
        shown = f"{var} (value hidden)" if var in _HIDDEN else f"{var}={environ[var]!r}"
        raise ConfigError(f"{shown}: {exc}") from None


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
        "redis_url": None,
        "environment": base,
    }
    if bucket := environ.get("S3_BUCKET"):
        if not _BUCKET.match(bucket):
            raise ConfigError(f"S3_BUCKET={bucket!r}: not a valid S3 bucket name")
        from_store = environ.get("SN46_DATA_STORE")
        if from_store and from_store.removeprefix("s3://").split("/", 1)[0] != bucket:
            raise ConfigError(
                f"S3_BUCKET={bucket!r} and SN46_DATA_STORE={from_store!r} name different buckets"
            )
        if not from_store:
            values["data_store"] = f"s3://{bucket}"
    for var, (name, parse) in _GUIDE.items():
        if environ.get(var):
            values[name] = _parse(environ, var, parse)
    for var, (name, parse, default) in GATEWAY_VARIABLES.items():
        values[name] = _parse(environ, var, parse) if environ.get(var) else default
    if values["state_db"] is None:
        values["state_db"] = project_home() / ".sn46" / "gateway" / "state.sqlite3"
    if not values["data_store"].startswith("s3://"):
        raise ConfigError(
            f"the gateway needs an S3 data store to presign uploads, got {values['data_store']!r}: "
            "set SN46_DATA_STORE=s3://bucket or S3_BUCKET (AWS_ENDPOINT_URL for MinIO or moto)"
        )
    if values["upload_min_bytes"] > values["upload_max_bytes"]:
        raise ConfigError("SN46_GATEWAY_UPLOAD_MIN_BYTES exceeds SN46_GATEWAY_UPLOAD_MAX_BYTES")
    return GatewaySettings(**values)
