"""Environments: local (the default), dev, test, staging and prod.

Each environment is a YAML file in ``sn46_pipelines/environments/`` (package
data; ``SN46_CONFIG_DIR`` names another folder); ``SN46_ENV`` picks one. A few
variables override the file so one image can serve any deployment:
``SN46_DATA_STORE``, ``SN46_MODEL_STORE``, ``SN46_REPLICA_STORE``,
``AWS_ENDPOINT_URL``, ``SN46_SECRETS_SOURCE`` and ``SN46_EXECUTOR``. A bad value is reported with
the field and where it came from (the file or the variable), because "invalid
config" alone sends an operator hunting. The files name secrets (Secrets
Manager ids), never hold them, and an error never repeats what was found under
``secrets`` or in an unknown field: it could be a value pasted by mistake.

This module is also the home of every other settings tree (the gateway's, the
training launcher's): they are :class:`SettingsModel` s too, declare a field
read from a variable with :func:`env_field`, read the variables with
:func:`read_variables` when they are loaded (never at import) and report a
bad value with :func:`describe`, so every setting is declared, validated and
reported the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticUndefined

from .errors import ConfigError
from .modelstore.pins import PinMode
from .secrets import SecretSource

if TYPE_CHECKING:
    from .objectstore import ObjectStore
    from .objectstore.s3 import S3Credentials

#: The environments, each a file ``config/{name}.yaml``.
Environment = Literal["local", "dev", "test", "staging", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
DEFAULT_ENV = "local"

#: How a run executes its steps (``Settings.executor``).
Executor = Literal["multiprocess", "k8s"]
EXECUTORS: tuple[Executor, ...] = get_args(Executor)

#: GC presets, from frequent to rare rollbacks: (keep_versions, keep_min_versions).
GC_PRESETS = {"aggressive": (5, 3), "moderate": (20, 5), "conservative": (50, 10)}

_STORE_URL = re.compile(r"^(file:///\S*|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?)$")
#: A Secrets Manager secret name, or the ARN of one.
_SECRET_ID = re.compile(
    r"^(arn:aws[a-z\-]*:secretsmanager:[a-z0-9\-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@\-]{1,512}$"
)
#: Five cron fields (minute hour day month weekday) of digits, ``*``, ``/``, ``-`` and ``,``.
_CRON = re.compile(r"^\s*([\d*/,\-]+\s+){4}[\d*/,\-]+\s*$")
#: Field names that can only mean a secret's value was written into a config file.
_SECRET_LIKE = re.compile(r"password|passwd|secret|token|access_key|credential|redis_url", re.IGNORECASE)


class SettingsModel(BaseModel):
    """Base of every settings model: an unknown field is an error (a misspelt key must not pass
    unnoticed), and settings never change once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Variable:
    """The environment variable that sets a field; :func:`env_field` attaches it to the field."""

    name: str
    secret: bool = False
    """Its value may hold a secret (a password inside a URL): an error names the variable, never the value."""

    @property
    def source(self) -> str:
        """How an error says that a value came from here."""
        return f"variable {self.name}"


def env_field(
    variable: str, default: Any = PydanticUndefined, *, secret: bool = False, **options: Any
) -> Any:
    """A settings field that environment variable ``variable`` sets: ``Field(default, **options)``
    (constraints, ``default_factory``, ``repr``) that also names its variable.

    The variable lives on the field, not in a table beside the model, so a setting's variable,
    default and validation are declared in one place, and loaders (:func:`read_variables`) and
    errors (:func:`describe`) find it there. Nothing is read here: a loader reads the variables
    when settings are loaded, so importing a module never depends on the environment.
    """
    info = Field(default, **options)
    info.metadata.append(Variable(variable, secret))
    return info


def variables(model: type[BaseModel], within: str = "") -> dict[str, Variable]:
    """The fields of ``model`` declared with :func:`env_field`, by field path (``within.name``)."""
    prefix = f"{within}." if within else ""
    return {
        prefix + name: meta
        for name, info in model.model_fields.items()
        for meta in info.metadata
        if isinstance(meta, Variable)
    }


def read_variables(
    fields: Mapping[str, Variable], environ: Mapping[str, str], *, empty_is_set: bool = False
) -> dict[str, str]:
    """The values ``environ`` gives ``fields`` (from :func:`variables`), by field path, for the model to
    validate. Surrounding blanks are dropped: nobody means them. A variable set to an empty value is
    unset, unless ``empty_is_set`` (where empty means "none", e.g. no secret)."""
    values = {}
    for path, variable in fields.items():
        if variable.name in environ:
            value = environ[variable.name].strip()
            if value or empty_is_set:
                values[path] = value
    return values


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: A list setting, written in a variable as ``a, b,c`` (blanks and empty items dropped).
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]


class RateLimits(SettingsModel):
    """Daily request quotas of the upload gateway (UTC days)."""

    per_miner: int = Field(50, ge=1)
    per_validator: int = Field(20_000, ge=1)
    total: int = Field(500_000, ge=1)


class GCPolicy(SettingsModel):
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


class InferencePin(SettingsModel):
    """What inference serves: the version a named pin points at, or always the newest."""

    pin: str = Field("prod", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    mode: PinMode = PinMode.PINNED
    counter: int | None = Field(None, ge=0)
    poll_interval: float = Field(30.0, gt=0)


class AutomationSettings(SettingsModel):
    """What runs by itself under the Dagster daemon, and how often (docs/automation.md)."""

    sensors: Literal["running", "stopped"] = "running"
    """Default state of miner_upload_sensor and the automation sensor when a code location first loads."""
    schedules: Literal["running", "stopped"] = "running"
    """Default state of the GC, chain-verification and replica-check schedules."""
    upload_sensor_interval_seconds: int = Field(30, ge=5)
    """Seconds between two ticks of miner_upload_sensor (the daemon checks sensors every 5 s)."""
    interval_seconds: int = Field(30, ge=5)
    """Seconds between two evaluations of the automation conditions."""
    aggregates_min_interval_seconds: int = Field(300, ge=0)
    """listing_aggregates runs at most once per this many seconds."""
    aggregates_deadline_cron: str = "*/10 * * * *"
    """In-flight ingests hold listing_aggregates back until the next tick of this cron after a round began."""
    training_cron: str = "0 */4 * * *"
    """price_model's cadence: it trains on each tick of this cron when the aggregates changed since."""
    training_min_new_rows: int = Field(20_000, ge=1)
    """price_model also trains as soon as this many more accepted rows exist than it last trained on."""
    run_history_days: int = Field(30, ge=1)
    """Finished Dagster runs last updated this many days ago are deleted nightly (defs/run_history.py)."""

    @field_validator("aggregates_deadline_cron", "training_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not _CRON.match(value):
            raise ValueError(f"not a cron schedule such as '*/10 * * * *', got {value!r}")
        return value


class ModelGate(SettingsModel):
    """The deployment gate's limits: the SN46 rules a price model must pass (docs/training.md)."""

    max_mape: float = Field(0.15, gt=0)
    """Validation MAPE (in onnxruntime) must be below this: SN46's target."""
    min_r2: float = Field(0.70, lt=1)
    """Validation R^2 must be above this: SN46's target."""
    max_noise_rise: float = Field(0.01, ge=0)
    """+-1 % noise on every input but the coordinates may raise MAPE by at most this."""
    max_onnx_mb: float = Field(200.0, gt=0)
    """Largest ONNX file SN46 accepts."""


class SecretsSettings(SettingsModel):
    """Where the environment's secrets live: Secrets Manager ids, never values (see docs/secrets.md).

    With ``source: env`` every secret comes from variables (boto3's default
    chain for the object store). With ``aws-secrets-manager`` the object store's
    keys are read from ``object_store`` by this process; ``redis`` and
    ``dagster_postgres`` name what the platform injects as ``REDIS_URL`` and
    ``DAGSTER_PG_PASSWORD``, so ``sn46 config`` can show and check them. An id
    left empty means that secret comes from variables in either case.
    """

    source: SecretSource = env_field("SN46_SECRETS_SOURCE", "env")
    object_store: str | None = None
    redis: str | None = None
    dagster_postgres: str | None = None

    @field_validator("object_store", "redis", "dagster_postgres")
    @classmethod
    def _secret_id(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_ID.match(value):
            raise ValueError(
                "not a Secrets Manager name (letters, digits, /_+=.@-) or ARN; "
                "a secret's value never belongs in a config file"
            )
        return value

    def secret_id(self, name: str) -> str | None:
        """The Secrets Manager id of secret ``name`` when this environment takes it from there, else None."""
        if self.source != "aws-secrets-manager":
            return None
        return {
            "object-store": self.object_store,
            "redis": self.redis,
            "dagster-postgres": self.dagster_postgres,
        }[name]


class Settings(SettingsModel):
    """One environment's settings, validated."""

    env: Environment
    data_store: str = env_field("SN46_DATA_STORE")
    model_store: str = env_field("SN46_MODEL_STORE")
    replica_store: str | None = env_field("SN46_REPLICA_STORE", None)
    region: str = Field("us-east-2", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    endpoint_url: str | None = env_field("AWS_ENDPOINT_URL", None)
    upload_events_queue: str | None = env_field("SN46_UPLOAD_EVENTS_QUEUE", None)
    """SQS queue URL receiving the data bucket's upload notifications: switches the sensor to event mode."""
    netuid: int = Field(46, ge=0)
    network: str = Field("finney", min_length=1)
    rate_limits: RateLimits = RateLimits()
    gc: GCPolicy = GCPolicy()
    inference: InferencePin = InferencePin()
    automation: AutomationSettings = AutomationSettings()
    model_gate: ModelGate = ModelGate()
    secrets: SecretsSettings = SecretsSettings()
    executor: Executor = env_field("SN46_EXECUTOR", "multiprocess")
    """How a run executes its steps: processes of the run, or one Kubernetes pod per step (``k8s``)."""

    @field_validator("executor", mode="before")
    @classmethod
    def _executor(cls, value: object) -> object:
        choice = value.strip().lower() if isinstance(value, str) else value
        if choice not in EXECUTORS:
            raise ValueError(f"expected one of {', '.join(EXECUTORS)}, got {value!r}")
        return choice

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

    def open_data_store(self) -> ObjectStore:
        """The object store holding miner uploads, curated listings and validator views."""
        return self.open_store(self.data_store)

    def open_model_store(self) -> ObjectStore:
        """The object store under the model store."""
        return self.open_store(self.model_store)

    def open_replica_store(self) -> ObjectStore:
        """The disaster-recovery replica of the model store."""
        if self.replica_store is None:
            raise ConfigError(f"environment {self.env!r} has no replica_store")
        return self.open_store(self.replica_store)

    def open_store(self, url: str) -> ObjectStore:
        """Open ``url`` with this environment's endpoint, region and object-store credentials.

        Use it for overridden URLs too (``--store``, a resource's ``url``), so an
        override never falls back to other credentials than the environment's.
        Secrets Manager out of reach makes the store unavailable, an outage
        retried like any other (:class:`~sn46_pipelines.objectstore.StoreUnavailableError`);
        a missing, forbidden or malformed secret is a
        :class:`~sn46_pipelines.secrets.SecretError`, which asking again will not fix.
        """
        from .objectstore import StoreUnavailableError, open_store
        from .secrets import SecretUnavailableError

        credentials = None
        if url.startswith("s3://"):
            try:
                credentials = self.object_store_credentials()
            except SecretUnavailableError as exc:
                raise StoreUnavailableError(f"{url}: {exc}") from exc
        return open_store(url, endpoint_url=self.endpoint_url, region=self.region, credentials=credentials)

    def object_store_credentials(self) -> S3Credentials | None:
        """The object store's keys when this environment reads them from Secrets Manager.

        None means boto3's default chain (variables, profile, instance or task
        role). Each call reads the secret again, so a rotated key is used by
        the next store opened. Raises :class:`~sn46_pipelines.secrets.SecretError`.
        """
        from .secrets import OBJECT_STORE, object_store_credentials

        secret_id = self.secrets.secret_id(OBJECT_STORE.name)
        return None if secret_id is None else object_store_credentials(secret_id, region=self.region)


#: The fields a variable overrides in the environment file, by dotted field path.
OVERRIDABLE = {**variables(Settings), **variables(SecretsSettings, within="secrets")}
#: Variables that override a field of the environment file: variable -> dotted field path.
ENV_OVERRIDES = {variable.name: path for path, variable in OVERRIDABLE.items()}


@dataclass(frozen=True)
class Origins:
    """Where a model's values came from, and what an error calls each field (see :func:`describe`)."""

    default: str | None
    """The source of every value ``sources`` does not name (an environment file); None: unsaid."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Dotted field path -> where its value came from (``variable NET_UID``, a file)."""
    named: Mapping[str, Variable] = field(default_factory=dict)
    """Fields an error calls by their variable, the name their operators know them by (the gateway's
    and the launcher's settings); any other field is called by its dotted path (an environment file's
    keys)."""

    def source(self, loc: tuple[str, ...]) -> str | None:
        for end in range(len(loc), 0, -1):
            if (path := ".".join(loc[:end])) in self.sources:
                return self.sources[path]
        return self.default


#: The source checkout: ``dagster.yaml`` and ``workspace.yaml`` live here.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: The shipped environment files, package data: an installed wheel finds them with no variable set.
PACKAGED_ENVIRONMENTS = Path(__file__).resolve().parent / "environments"


def project_home() -> Path:
    """The folder local stores live under: ``SN46_HOME``, else the source checkout."""
    return Path(os.environ.get("SN46_HOME") or SOURCE_ROOT)


def config_dir() -> Path:
    """Where the environment files are: ``SN46_CONFIG_DIR`` (an operator's own), else the package's."""
    return Path(os.environ.get("SN46_CONFIG_DIR") or PACKAGED_ENVIRONMENTS)


def load_settings(env: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate one environment (``env``, else ``SN46_ENV``, else ``local``)."""
    environ = dict(os.environ if environ is None else environ)
    name = env or environ.get("SN46_ENV") or DEFAULT_ENV
    if name not in ENVIRONMENTS:
        source = "argument" if env else "variable SN46_ENV"
        raise ConfigError(
            f"env: unknown environment {name!r} ({source}); choose one of {', '.join(ENVIRONMENTS)}"
        )
    path = config_dir() / f"{name}.yaml"
    raw = _read_yaml(path)
    home = str(Path(environ.get("SN46_HOME") or project_home()).resolve())
    raw = _expand(raw, {"SN46_HOME": home})
    overrides = read_variables(OVERRIDABLE, environ)
    for field_path, value in overrides.items():
        _assign(raw, field_path, value)
    raw["env"] = name
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        origins = Origins(str(path), {field_path: OVERRIDABLE[field_path].source for field_path in overrides})
        raise ConfigError("invalid configuration: " + describe(exc, origins)) from None


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


def _assign(raw: dict[str, Any], path: str, value: str) -> None:
    """Set the field at dotted ``path`` (``secrets.source``), creating its sections."""
    *sections, last = path.split(".")
    for name in sections:
        if not isinstance(raw.get(name), dict):
            raw[name] = {}
        raw = raw[name]
    raw[last] = value


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


def problem(name: str, message: str, *, source: str | None = None, got: object = PydanticUndefined) -> str:
    """One problem, the way every settings error says it: ``name: what is wrong, got value [from source]``.

    ``name`` is the field (an environment file's dotted key, or the variable the gateway's and the
    launcher's settings are known by; empty for a problem of the whole model), ``source`` where the
    value came from (the file, ``variable NAME``, an override). ``got`` is left out where repeating
    the value could leak a secret, or the message already says it.
    """
    shown = "" if got is PydanticUndefined else f", got {got!r}"
    where = f" [from {source}]" if source else ""
    return f"{name}: {message}{shown}{where}" if name else f"{message}{shown}{where}"


def describe(exc: ValidationError, origins: Origins) -> str:
    """Every problem of ``exc`` in one line (:func:`problem`, joined by ``; ``), for a :class:`ConfigError`.

    A field declared secret (``env_field(..., secret=True)``) is reported as ``VARIABLE (value
    hidden): what is wrong``: its variable is the only place it can come from, and its value, or
    anything pydantic quotes of it, must not reach a log.
    """
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        path = ".".join(loc)
        message = error["msg"].removeprefix("Value error, ")
        variable = origins.named.get(path)
        name = variable.name if variable else path
        if variable and variable.secret:
            problems.append(f"{name} (value hidden): {message}")
            continue
        if error["type"] == "extra_forbidden" and _SECRET_LIKE.search(loc[-1]):
            message += "; a secret never belongs in a config file: see docs/secrets.md"
        said = error["type"] == "missing" or isinstance(error["input"], dict) or "got" in message
        # Whatever sits under secrets: or in an unknown field may be a pasted secret: never repeat it.
        hidden = error["type"] == "extra_forbidden" or loc[:1] == ("secrets",)
        got = PydanticUndefined if said or hidden else error["input"]
        problems.append(problem(name, message, source=origins.source(loc), got=got))
    return "; ".join(problems)
