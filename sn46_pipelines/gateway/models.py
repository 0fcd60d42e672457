"""Request bodies of the signed endpoints: today's field names, bounded sizes.

Signature fields are optional because a ``btauth/1`` request authenticates
with headers instead; the app requires them when no such headers are sent.
Unknown fields are ignored, as today (validators send ``expiry_hours``, some
clients send extras).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .auth import is_ss58
from .presign import check_job_id

Hotkey = Annotated[str, Field(min_length=46, max_length=48)]


class SignedBody(BaseModel):
    """The signature fields every signed request body may carry (absent when headers sign it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    hotkey: Hotkey | None = None
    timestamp: int | None = Field(None, description="Unix seconds of the signed commitment")
    signature: str | None = Field(None, max_length=200, description="hex sr25519 signature, 0x optional")
    expiry: int | None = Field(None, description="Unix seconds after which the request is refused")

    @field_validator("hotkey", "miner_hotkey", check_fields=False)
    @classmethod
    def _ss58(cls, value: str | None) -> str | None:
        if value is not None and not is_ss58(value):
            raise ValueError("not an ss58 address")
        return value


class MinerAccessRequest(SignedBody):
    """``POST /get-folder-access``: commitment ``s3:data:access:{coldkey}:{hotkey}:{timestamp}``."""

    coldkey: Hotkey | None = None
    job_id: str | None = Field(
        None, max_length=128, description="optional: restrict the upload policy to this job's folder"
    )

    @field_validator("job_id")
    @classmethod
    def _safe_job_id(cls, value: str | None) -> str | None:
        return None if value is None else check_job_id(value)


class ValidatorAccessRequest(SignedBody):
    """``POST /get-validator-access``: commitment ``s3:validator:access:{timestamp}``."""

    continuation_token: str | None = Field(
        None, max_length=1024, description="NextContinuationToken of the previous listing page"
    )


class MinerSpecificRequest(ValidatorAccessRequest):
    """``POST /get-miner-specific-access``: commitment ``s3:validator:miner:{miner_hotkey}:{timestamp}``."""

    miner_hotkey: Hotkey


class FileUrlsRequest(SignedBody):
    """``POST /get-file-presigned-urls``.

    Commitment ``s3:validator:files:{miner_hotkey}:{hotkey}:{timestamp}``.
    """

    miner_hotkey: Hotkey
    file_keys: list[Annotated[str, Field(min_length=1, max_length=1024)]]
    expiry_hours: int | None = Field(None, ge=1, le=168)


class FileUploadRequest(SignedBody):
    """``POST /get-file-upload-url`` (SN13's uploader): one parquet file of one job, header-signed only.

    ``filename`` is checked with the job folder once the signer is known: it must be a name ingest reads
    (``data_{YYYYmmdd_HHMMSS}_{rows}[_{16 hex}].parquet``).
    """

    job_id: str = Field(max_length=128)
    filename: str = Field(min_length=1, max_length=200)

    @field_validator("job_id")
    @classmethod
    def _safe_job_id(cls, value: str) -> str:
        return check_job_id(value)
