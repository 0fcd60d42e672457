"""A hash-chained model store on any object store (``file://`` or ``s3://``), usable without Dagster.

>>> store = ModelStore.open("file:///tmp/models")
>>> record = store.commit("checkpoints/run-7", message="nightly", metadata={"mape": 0.081})
>>> store.checkout("pin:prod", "/srv/model")

See docs/modelstore-format.md for the on-store format.
"""

from .errors import (
    ConflictError,
    GCRefusedError,
    ImportRejectedError,
    IntegrityError,
    InvalidRecordError,
    ModelStoreError,
    StoreBusyError,
    VersionCollectedError,
    VersionNotFoundError,
)
from .gc import GCResult, collect_garbage
from .inference import Checkpoint, Health, InferenceClient, ServedModel
from .pins import Pin, pin_history, read_pin, read_pins, set_pin
from .record import ManifestEntry, VersionRecord, build_record, parse_record
from .store import ModelStore
from .verify import Corruption, VerifyReport, verify

__all__ = [
    "Checkpoint",
    "ConflictError",
    "Corruption",
    "GCRefusedError",
    "GCResult",
    "Health",
    "ImportRejectedError",
    "InferenceClient",
    "IntegrityError",
    "InvalidRecordError",
    "ManifestEntry",
    "ModelStore",
    "ModelStoreError",
    "Pin",
    "ServedModel",
    "StoreBusyError",
    "VerifyReport",
    "VersionCollectedError",
    "VersionNotFoundError",
    "VersionRecord",
    "build_record",
    "collect_garbage",
    "parse_record",
    "pin_history",
    "read_pin",
    "read_pins",
    "set_pin",
    "verify",
]
