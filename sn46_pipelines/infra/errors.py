"""Why an infrastructure plan cannot be made, checked or applied."""

from __future__ import annotations

from ..errors import SN46Error


class InfraError(SN46Error):
    """The plan cannot be built or applied; the message names the bucket, setting or role at fault."""


class ModelStoreLifecycleError(InfraError):
    """A lifecycle rule would expire model-store objects or move them where they cannot be read.

    The model store's garbage collector is the only thing allowed to delete
    its objects (it knows which versions are pinned or still referenced), and
    every live object must stay readable without a restore.
    """


class UnsupportedPolicyError(InfraError):
    """A policy uses an IAM feature the local evaluator does not model, so it refuses to guess."""
