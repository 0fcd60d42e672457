"""Every failure the model store raises, so callers and the CLI can tell them apart."""

from __future__ import annotations

from ..errors import SN46Error, TransientError


class ModelStoreError(SN46Error):
    """Base class of model-store failures: answers about the chain or the request, not about the
    object store under it (whose errors pass through as :class:`~..objectstore.ObjectStoreError`)."""


class ConflictError(ModelStoreError):
    """Another writer committed the counter this commit wanted: commits are fast-forward only."""

    def __init__(self, counter: int, winner: dict | None) -> None:
        winner_text = (
            f"{winner['version_id']} (record {winner['record_hash'][:12]}, {winner.get('message')!r})"
            if winner
            else f"v{counter:010d}"
        )
        super().__init__(f"not fast-forward: {winner_text} was committed first; re-read the head and retry")
        self.counter = counter
        self.winner = winner


class VersionNotFoundError(ModelStoreError, KeyError):
    """The version (or pin) does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


class VersionCollectedError(ModelStoreError):
    """The version's files were garbage-collected; only its record remains."""


class InvalidRecordError(ModelStoreError, ValueError):
    """A record, manifest, version name or argument is malformed."""


class IntegrityError(ModelStoreError):
    """Bytes read from the store do not match the hash that names them."""


class GCRefusedError(ModelStoreError):
    """GC would leave fewer live versions than ``keep_min_versions``; nothing was deleted."""


class StoreBusyError(ModelStoreError, TransientError):
    """Another GC holds the store's lease: a later attempt may find it free."""


class ImportRejectedError(ModelStoreError):
    """An export archive failed verification or conflicts with the target chain; nothing was made visible."""
