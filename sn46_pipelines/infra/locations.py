"""Where an environment's stores live in S3, and the ARNs that name them.

Both the bucket plan and the IAM policies start from the same three store
URLs of ``load_settings()`` (data store, model store, replica), so a bucket
or prefix moved in ``environments/*.yaml`` or by ``SN46_*_STORE`` moves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from .errors import InfraError

#: What each store field is called in messages and plans.
STORE_NAMES = {
    "data_store": "data store",
    "model_store": "model store",
    "replica_store": "model-store replica",
}


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """One store: its URL, its bucket and the key prefix it owns inside that bucket ("" or ``"models/"``)."""

    field: str
    url: str
    bucket: str
    prefix: str

    @property
    def name(self) -> str:
        return STORE_NAMES[self.field]

    def key(self, relative: str) -> str:
        """The bucket key (or key pattern) of ``relative`` inside this store."""
        return self.prefix + relative


@dataclass(frozen=True, slots=True)
class EnvironmentStores:
    """The S3 stores of one environment."""

    env: str
    region: str
    data: StoreLocation
    model: StoreLocation
    replica: StoreLocation | None

    @property
    def all(self) -> tuple[StoreLocation, ...]:
        return tuple(s for s in (self.data, self.model, self.replica) if s is not None)

    @property
    def model_stores(self) -> tuple[StoreLocation, ...]:
        """The stores whose objects only the model store's own code may delete (primary and replica)."""
        return tuple(s for s in (self.model, self.replica) if s is not None)

    def buckets(self) -> dict[str, tuple[StoreLocation, ...]]:
        """Each bucket with the stores inside it, in the order the settings name them."""
        out: dict[str, tuple[StoreLocation, ...]] = {}
        for store in self.all:
            out[store.bucket] = (*out.get(store.bucket, ()), store)
        return out


def s3_location(field: str, url: str) -> StoreLocation:
    """Parse one ``s3://bucket[/prefix]`` store URL; :class:`InfraError` for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InfraError(
            f"{field} is {url!r}: bucket set-up and IAM policies need S3 stores (s3://bucket/prefix); "
            "the local environment keeps its stores in folders and needs neither"
        )
    prefix = parts.path.strip("/")
    return StoreLocation(field, url, parts.netloc, f"{prefix}/" if prefix else "")


def environment_stores(settings: Settings) -> EnvironmentStores:
    """The environment's stores, each of which must be on S3."""
    replica = settings.replica_store
    stores = EnvironmentStores(
        env=settings.env,
        region=settings.region,
        data=s3_location("data_store", settings.data_store),
        model=s3_location("model_store", settings.model_store),
        replica=s3_location("replica_store", replica) if replica else None,
    )
    _check_disjoint(stores)
    return stores


def _check_disjoint(stores: EnvironmentStores) -> None:
    """Model stores may sit inside the data store's area, never above it, and never overlap each other."""
    for model in stores.model_stores:
        for other in stores.all:
            if other is model or other.bucket != model.bucket:
                continue
            if other.field == "data_store":
                if other.prefix.startswith(model.prefix):
                    raise InfraError(
                        f"{model.name} {model.url} contains the data store {other.url}: give the model store "
                        "its own prefix (e.g. s3://bucket/models) so lifecycle rules and IAM policies can "
                        "tell them apart"
                    )
            elif _overlap(other.prefix, model.prefix):
                raise InfraError(f"{model.name} {model.url} and {other.name} {other.url} overlap")


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def partition(region: str) -> str:
    """The ARN partition of a region: ``aws``, ``aws-cn`` or ``aws-us-gov``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
