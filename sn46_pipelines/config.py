"""Environments: local (the default), dev, test, staging and prod.

Each environment is a YAML file in ``config/``; ``SN46_ENV`` picks one. A few
variables override the file so one image can serve any deployment:
``SN46_DATA_STORE``, ``SN46_MODEL_STORE``, ``SN46_REPLICA_STORE`` and
``AWS_ENDPOINT_URL``. A bad value is reported with the field and where it
came from (the file or the variable), because "invalid config" alone sends an
operator hunting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENVIRONMENTS = ("local", "dev", "test", "staging", "prod")
DEFAULT_ENV = "local"

#: Variables that override a field of the environment file.
ENV_OVERRIDES = {
    "SN46_DATA_STORE": "data_store",
    "SN46_MODEL_STORE": "model_store",
    "SN46_REPLICA_STORE": "replica_store",
    "AWS_ENDPOINT_URL": "endpoint_url",
    "SN46_UPLOAD_EVENTS_QUEUE": "upload_events_queue",
}

#: GC presets of the model-store guide: (keep_versions, keep_min_versions).
GC_PRESETS = {"aggressive": (5, 3), "moderate": (20, 5), "conservative": (50, 10)}

_STORE_URL = re.compile(r"^(file:///\S*|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?)$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the field and its source."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimits(_Strict):
    """Daily request quotas of the upload gateway (UTC days)."""

    per_miner: int = Field(50, ge=1)
    per_validator: int = Field(20_000, ge=1)
    total: int = Field(500_000, ge=1)


class GCPolicy(_Strict):
    """Model-store retention. A ``preset`` fills in both counts unless they are given."""

    preset: Literal["aggressive", "moderate", "conservative"] | None = None
    keep_versions: int = Field(20, ge=1)
    keep_min_versions: int = Field(5, ge=1)
    protect_tags: tuple[int, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in GC_PRESETS:
            keep, keep_min = GC_PRESETS[data["preset"]]
            data = {"keep_versions": keep, "keep_min_versions": keep_min, **data}
        return data

    @model_validator(mode="after")
    def _min_not_above_keep(self) -> GCPolicy:
        if self.keep_min_versions > self.keep_versions:
            raise ValueError(
                f"keep_min_versions ({self.keep_min_versions}) exceeds keep_versions ({self.keep_versions})"
            )
        return self


class InferencePin(_Strict):
    """What inference serves: the version a named pin points at, or always the newest."""

    pin: str = Field("prod", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    mode: Literal["pinned", "tracking"] = "pinned"
    counter: int | None = Field(None, ge=0)
    poll_interval: float = Field(30.0, gt=0)


class Settings(_Strict):
    """One environment's settings, validated."""

    env: Literal["local", "dev", "test", "staging", "prod"]
    data_store: str
    model_store: str
    replica_store: str | None = None
    region: str = Field("us-east-2", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    endpoint_url: str | None = None
    upload_events_queue: str | None = None
    """SQS queue URL receiving the data bucket's upload notifications: switches the sensor to event mode."""
    netuid: int = Field(46, ge=0)
    network: str = Field("finney", min_length=1)
    rate_limits: RateLimits = RateLimits()
    gc: GCPolicy = GCPolicy()
    inference: InferencePin = InferencePin()

    @field_validator("data_store", "model_store", "replica_store")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is not None and not _STORE_URL.match(value):
            raise ValueError(f"not a store URL (file:///abs/path or s3://bucket/prefix), got {value!r}")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"not an http(s) URL such as http://minio:9000, got {value!r}")
        return value

    def open_data_store(self):  # -> ObjectStore (import kept lazy for a fast CLI)
        """The object store holding miner uploads, curated listings and validator views."""
        return self._open(self.data_store)

    def open_model_store(self):
        """The object store under the model store."""
        return self._open(self.model_store)

    def open_replica_store(self):
        """The disaster-recovery replica of the model store."""
        if self.replica_store is None:
            raise ConfigError(f"environment {self.env!r} has no replica_store")
        return self._open(self.replica_store)

    def _open(self, url: str):
        from .objectstore import open_store

        return open_store(url, endpoint_url=self.endpoint_url, region=self.region)


@dataclass(frozen=True)
class _Source:
    """Where each field's value came from, for error messages."""

    file: Path
    overrides: dict[str, str]

    def of(self, field: str) -> str:
        return f"variable {self.overrides[field]}" if field in self.overrides else str(self.file)


#: The source checkout: ``config/``, ``dagster.yaml`` and ``workspace.yaml`` live here.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def project_home() -> Path:
    """The folder local stores live under: ``SN46_HOME``, else the source checkout."""
    return Path(os.environ.get("SN46_HOME") or SOURCE_ROOT)


def config_dir() -> Path:
    """Where the environment files are: ``SN46_CONFIG_DIR``, else the checkout's ``config/``."""
    return Path(os.environ.get("SN46_CONFIG_DIR") or SOURCE_ROOT / "config")


def load_settings(env: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate one environment (``env``, else ``SN46_ENV``, else ``local``)."""
    environ = dict(os.environ if environ is None else environ)
    name = env or environ.get("SN46_ENV") or DEFAULT_ENV
    if name not in ENVIRONMENTS:
        source = "argument" if env else "variable SN46_ENV"
        raise ConfigError(f"env: unknown environment {name!r} ({source}); choose one of {', '.join(ENVIRONMENTS)}")
    path = config_dir() / f"{name}.yaml"
    raw = _read_yaml(path)
    home = str(Path(environ.get("SN46_HOME") or project_home()).resolve())
    raw = _expand(raw, {"SN46_HOME": home})
    overrides = {}
    for var, field in ENV_OVERRIDES.items():
        if environ.get(var):
            raw[field] = environ[var]
            overrides[field] = var
    raw["env"] = name
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, _Source(path, overrides))) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: environment file not found (set SN46_CONFIG_DIR?)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    return data


def _expand(value: Any, variables: dict[str, str]) -> Any:
    """Replace ``${SN46_HOME}`` in every string of the file."""
    if isinstance(value, str):
        for name, replacement in variables.items():
            value = value.replace("${" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _expand(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, variables) for v in value]
    return value


def _describe(exc: ValidationError, source: _Source) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        shown = error["type"] == "missing" or isinstance(error["input"], dict) or "got" in message
        got = "" if shown else f" (got {error['input']!r})"
        where = source.of(loc[0]) if loc else str(source.file)
        problems.append(f"{'.'.join(loc) or '(top level)'}: {message}{got} [from {where}]")
    return "invalid configuration: " + "; ".join(problems)
