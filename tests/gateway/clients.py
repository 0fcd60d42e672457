"""Today's clients' requests, rebuilt the way those clients build them, byte for byte where it matters.

Written from reading the clients, not copied from them:

- the SN46 (resi) miner: ``S3Auth.get_credentials`` and ``ResiLabsAPIClient.get_s3_upload_credentials``
  send ``{coldkey, hotkey, timestamp, signature, expiry: timestamp + 86400}`` as ``json=`` (so
  ``json.dumps`` with its default separators); ``ResiLabsAPIClient`` resends that same body up to three
  times when an attempt fails (a 4xx/5xx or a lost response). ``S3Auth.upload_file_with_path`` POSTs
  the grant's ``fields`` with ``key = grant["folder"] + path`` and counts only a 204 as success. The
  zipcode path passes ``data/hotkey={hotkey}/epoch={epoch}/zipcode={zipcode}/data_{YYYYmmdd_HHMMSS}.json``
  (so the stored key carries the folder twice), ``S3PartitionedUploader`` passes
  ``job_id={job_id}/data_{YYYYmmdd_HHMMSS}_{rows}.parquet`` and asks for one grant per upload run.
- the SN46 validator: ``ValidatorS3Access`` signs ``s3:validator:access:{timestamp}`` (and
  ``s3:validator:miner:{miner}:{timestamp}``) with ``coldkey`` and ``expiry`` in the body, and keeps a
  grant while ``now < fetched_at + expiry_seconds - 600 - 3600``.
- SN13's current validator (data-universe): ``TaoSigner`` headers over the exact body bytes, sent to
  ``/get-miner-list`` (``{miner_hotkey[, continuation_token]}``) and ``/get-file-presigned-urls``
  (``{miner_hotkey, file_keys, expiry_hours: 3}``), body ``json.dumps(payload).encode()``.
- SN13's current miner uploader (``S3PartitionedUploader`` through ``miner_upload_parquet_file``): one
  ``/get-file-upload-url`` request per file, body pydantic's ``model_dump_json()`` of
  ``{job_id, filename}`` (compact JSON), ``TaoSigner`` headers plus ``Content-Type: application/json``,
  a fresh nonce per call; names ``data_{YYYYmmdd_HHMMSS}_{rows}_{token_hex(8)}.parquet``. The answer's
  ``fields`` are POSTed as they are (the client adds no ``key``) with the file part typed
  ``application/octet-stream``; any 2xx is success, and an error whose text holds ``409`` means
  "already uploaded" and is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from bittensor.sp_core import Keypair

S3_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
JSON = {"Content-Type": "application/json"}

#: Seconds the SN46 validator subtracts from ``expiry_seconds`` (10 minutes), then its refresh margin (1 h).
VALIDATOR_EXPIRY_BUFFER_S = 600
VALIDATOR_REFRESH_MARGIN_S = 3600


def resi_access_body(hotkey: Keypair, coldkey: str, commitment: str, **extra: Any) -> bytes:
    """A signed SN46 request body as the resi clients send it: ``requests``' ``json=`` serialization."""
    ts = int(time.time())
    payload = {
        "coldkey": coldkey,
        "hotkey": hotkey.ss58_address,
        "timestamp": ts,
        "signature": hotkey.sign(commitment.format(timestamp=ts).encode()).hex(),
        **extra,
        "expiry": ts + 86400,
    }
    return json.dumps(payload).encode()


def resi_miner_grant_body(hotkey: Keypair, coldkey: str) -> bytes:
    """``/get-folder-access`` as ``ResiLabsAPIClient.get_s3_upload_credentials`` and ``S3Auth`` send it."""
    return resi_access_body(hotkey, coldkey, f"s3:data:access:{coldkey}:{hotkey.ss58_address}:{{timestamp}}")


def resi_validator_body(hotkey: Keypair, coldkey: str) -> bytes:
    """``/get-validator-access`` as ``ValidatorS3Access.get_validator_access`` sends it."""
    return resi_access_body(hotkey, coldkey, "s3:validator:access:{timestamp}")


def resi_miner_specific_body(hotkey: Keypair, coldkey: str, miner: str) -> bytes:
    """``/get-miner-specific-access`` as ``ValidatorS3Access.get_miner_specific_access`` sends it."""
    return resi_access_body(hotkey, coldkey, f"s3:validator:miner:{miner}:{{timestamp}}", miner_hotkey=miner)


def stamp(moment: datetime | None = None) -> str:
    """The miners' file-name timestamp, ``YYYYmmdd_HHMMSS`` (local time in the clients; UTC here)."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")


def zipcode_key(grant: dict, hotkey: str, epoch_id: str, zipcode: str, moment: datetime | None = None) -> str:
    """The key the resi miner's zipcode upload writes: the grant's folder, then its own full path."""
    path = f"data/hotkey={hotkey}/epoch={epoch_id}/zipcode={zipcode}/data_{stamp(moment)}.json"
    return grant["folder"] + path


def job_key(grant: dict, job_id: str, rows: int, moment: datetime | None = None) -> str:
    """The key ``S3PartitionedUploader`` writes for one parquet chunk of a job."""
    return f"{grant['folder']}job_id={job_id}/data_{stamp(moment)}_{rows}.parquet"


def zipcode_document(hotkey: str, epoch_id: str, zipcode: str, listings: int) -> bytes:
    """An epoch/zipcode upload as the resi miner writes it (``json.dump(..., default=str, indent=2)``)."""
    now = datetime.now(UTC).isoformat()
    rows = [
        {
            "zpid": str(40_000_000 + i),
            "mls_id": f"MLS{i}",
            "address": f"{i} Congress Ave, Austin, TX {zipcode}",
            "price": 350_000 + 1_000 * i,
            "bedrooms": 3,
            "bathrooms": 2.0,
            "sqft": 1_400 + i,
            "listing_date": now,
            "property_type": "SINGLE_FAMILY",
            "listing_status": "FOR_SALE",
            "days_on_market": i,
            "source_url": f"https://www.zillow.com/homedetails/{40_000_000 + i}_zpid/",
            "scraped_timestamp": now,
            "zipcode": zipcode,
            "lot_size": None,
            "year_built": None,
            "zestimate": None,
            "latitude": 30.27,
            "longitude": -97.74,
            "data_source": "zillow",
            "epoch_id": epoch_id,
            "scraped_for_epoch": True,
            "submission_timestamp": now,
        }
        for i in range(listings)
    ]
    document = {
        "epoch_id": epoch_id,
        "zipcode": zipcode,
        "miner_hotkey": hotkey,
        "submission_timestamp": now,
        "listing_count": len(rows),
        "listings": rows,
    }
    return json.dumps(document, default=str, indent=2).encode()


def upload(http: Any, grant: dict, key: str, data: bytes, name: str = "upload") -> Any:
    """``S3Auth.upload_file_with_path``'s POST: the grant's fields, the key, the file part."""
    return http.post(grant["url"], data={**grant["fields"], "key": key}, files={"file": (name, data)})


def tao_headers(
    keypair: Keypair, body: bytes, *, millis: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """SN13's ``TaoSigner`` headers (version 2) over ``body``, with the JSON content type it adds."""
    ts = str(round(time.time() * 1000) if millis is None else millis)
    nonce = nonce or str(uuid.uuid4())
    message = f"{hashlib.sha256(body).hexdigest()}.{nonce}.{ts}"
    return {
        "X-Tao-Version": "2",
        "X-Tao-Timestamp": ts,
        "X-Tao-Nonce": nonce,
        "X-Tao-Signed-By": keypair.ss58_address,
        "X-Tao-Signature": base64.b64encode(keypair.sign(message)).decode("ascii"),
        **JSON,
    }


def tao_post(client: Any, path: str, keypair: Keypair, payload: dict) -> Any:
    body = json.dumps(payload).encode()
    return client.post(path, content=body, headers=tao_headers(keypair, body))


def sn13_file_name(rows: int, moment: datetime | None = None) -> str:
    """The name SN13's uploader gives one job snapshot."""
    return f"data_{stamp(moment)}_{rows}_{secrets.token_hex(8)}.parquet"


def sn13_file_upload_body(job_id: str, filename: str) -> bytes:
    """``MinerFileUploadRequest(job_id=..., filename=...).model_dump_json()``: compact JSON in field order."""
    return json.dumps({"job_id": job_id, "filename": filename}, separators=(",", ":")).encode()


def sn13_upload(http: Any, answer: dict, filename: str, data: bytes) -> Any:
    """``miner_upload_parquet_file``'s second step: the answer's fields as they are, the file part."""
    assert answer["method"] == "POST"  # the client PUTs only when told to
    return http.post(
        answer["url"],
        data=dict(answer["fields"]),
        files={"file": (filename, data, "application/octet-stream")},
    )


class ValidatorGrantCache:
    """The SN46 validator's ``ensure_access`` rule on a clock of our own: when does it ask again?"""

    def __init__(self) -> None:
        self.expires_at = 0.0
        self.requests = 0

    def needs_grant(self, now: float) -> bool:
        return self.requests == 0 or now >= self.expires_at - VALIDATOR_REFRESH_MARGIN_S

    def took(self, grant: dict, now: float) -> None:
        self.requests += 1
        self.expires_at = now + grant["expiry_seconds"] - VALIDATOR_EXPIRY_BUFFER_S


def listing(xml_text: str) -> tuple[list[str], str | None]:
    """Keys of one ListObjectsV2 page (URL-decoded, as the clients decode them) and the next token."""
    root = ET.fromstring(xml_text)
    keys = [unquote(k.text) for k in root.findall(".//s3:Contents/s3:Key", S3_NS)]
    truncated = root.findtext("s3:IsTruncated", namespaces=S3_NS) == "true"
    return keys, root.findtext("s3:NextContinuationToken", namespaces=S3_NS) if truncated else None


def policy_allows(fields: dict, bucket: str, key: str, size: int, now: float | None = None) -> bool:
    """Evaluate a presigned POST policy as S3 does, for a server that does not (moto).

    Every condition must hold, and every form field but the policy, the
    signature and the file must be named by a condition.
    """
    policy = json.loads(base64.b64decode(fields["policy"]))
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if expires.timestamp() <= (time.time() if now is None else now):
        return False
    form = {**fields, "key": key, "bucket": bucket}
    named = {"bucket", "policy", "x-amz-signature"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            [(name, value)] = condition.items()
            named.add(name)
            if form.get(name) != value:
                return False
        elif condition[0] == "content-length-range":
            if not condition[1] <= size <= condition[2]:
                return False
        else:
            operator, name, value = condition
            named.add(name.removeprefix("$"))
            actual = form.get(name.removeprefix("$"), "")
            if not (actual.startswith(value) if operator == "starts-with" else actual == value):
                return False
    return named >= set(form)
