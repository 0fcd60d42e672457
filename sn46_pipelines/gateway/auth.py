"""Who sent a request: a signed commitment, an ``X-Tao`` signed body, or a ``btauth/1`` signed request.

All three end in a :class:`Caller` carrying a replay key. The replay key is
not claimed here: the app first checks metagraph membership, then the ledger
claims the key and charges the quota in one atomic call, so a replay never
costs quota and nobody can spend a quota without a valid signature.

- Legacy commitments (SN46's miners and validators) are signed strings such
  as ``s3:data:access:{coldkey}:{hotkey}:{timestamp}``, hex signature with or
  without ``0x``. sr25519 signatures are randomized, so the signature bytes
  identify one signing act: the replay key.
- ``X-Tao`` version 2 (SN13's current clients) signs
  ``{sha256(body) hex}.{nonce}.{timestamp in ms}`` and sends the signer,
  nonce, timestamp and base64 signature in ``X-Tao-*`` headers. It binds the
  body but not the method or path; the ledger's fingerprint, which covers
  both, keeps a captured request from being spent on another endpoint. The
  replay key is the signer and nonce.
- ``btauth/1`` (bittensor's ``http_auth``) binds method, path, body, nonce and
  receiver; the replay key is the signer and nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bittensor import http_auth
from bittensor.sp_core import Keypair

_SS58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{46,48}$")
SIGNATURE_BYTES = 64
#: The ``X-Tao`` headers, all required (SN13's ``TaoSigner``; version "2").
TAO_HEADERS = ("X-Tao-Version", "X-Tao-Timestamp", "X-Tao-Nonce", "X-Tao-Signed-By", "X-Tao-Signature")
TAO_VERSION = "2"
# A uuid4 is what clients send; anything short, printable and key-safe is accepted.
_TAO_NONCE = re.compile(r"^[A-Za-z0-9_\-]{8,128}$")
_TAO_MILLIS = re.compile(r"^[0-9]{1,16}$")


def is_ss58(text: str) -> bool:
    """True when ``text`` looks like an ss58 address (base58, 46-48 characters).

    A cheap shape check for values that end up in S3 keys; signatures are
    what actually proves an address.
    """
    return bool(_SS58.match(text))


class AuthError(Exception):
    """Authentication failed; the message is safe to return to the caller."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated sender and what makes this request unique."""

    hotkey: str
    #: Ledger key remembered until the request could no longer pass the freshness check.
    replay_key: str
    #: Seconds the replay key must be kept.
    replay_ttl: int


def _check_fresh(timestamp: float, now: float, max_age_s: int, max_skew_s: int) -> int:
    """Refuse a stale or future timestamp; return the seconds the request stays fresh (its claim's TTL)."""
    if now - timestamp > max_age_s:
        raise AuthError("Invalid timestamp: the signed timestamp is too old")
    if timestamp - now > max_skew_s:
        raise AuthError("Invalid timestamp: the signed timestamp is in the future")
    return max(1, int(timestamp + max_age_s - now) + 1)


def _check_signature(hotkey: str, message: bytes, raw: bytes) -> None:
    if len(raw) != SIGNATURE_BYTES:
        raise AuthError("Invalid signature")
    try:
        valid = Keypair(ss58_address=hotkey).verify(message, raw)
    except ValueError:  # an address that does not decode
        valid = False
    if not valid:
        raise AuthError("Invalid signature")


def verify_commitment(
    commitment: str,
    *,
    hotkey: str,
    signature: str,
    timestamp: int,
    max_age_s: int,
    max_skew_s: int,
    expiry: int | None = None,
    now: float | None = None,
) -> Caller:
    """Check a legacy signed commitment: freshness first (cheap), then the sr25519 signature."""
    now = time.time() if now is None else now
    if expiry is not None and now > expiry:
        raise AuthError("Invalid timestamp: the signed timestamp is too old")
    ttl = _check_fresh(timestamp, now, max_age_s, max_skew_s)
    try:
        raw = bytes.fromhex(signature.removeprefix("0x").removeprefix("0X"))
    except ValueError:
        raise AuthError("Invalid signature: not hex") from None
    _check_signature(hotkey, commitment.encode(), raw)
    return Caller(hotkey=hotkey, replay_key=f"sig:{raw.hex()}", replay_ttl=ttl)


def has_tao_headers(headers: Mapping[str, str]) -> bool:
    """True when the request carries ``X-Tao`` headers (then they, not the body, authenticate it)."""
    return "x-tao-signature" in headers or "x-tao-signed-by" in headers


def verify_tao(
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_age_s: int,
    max_skew_s: int,
    now: float | None = None,
) -> Caller:
    """Check an ``X-Tao`` v2 request: all headers, fresh millisecond timestamp, signature over the body.

    The freshness window is the commitments' (``max_age_s`` back, ``max_skew_s`` ahead): the scheme
    fixes no window of its own, and its clients send the timestamp of the moment they sign.
    """
    missing = [name for name in TAO_HEADERS if name.lower() not in headers]
    if missing:
        raise AuthError(f"Missing headers: {', '.join(missing)}")
    if headers["x-tao-version"] != TAO_VERSION:
        raise AuthError(f"Unsupported X-Tao-Version (this gateway accepts {TAO_VERSION})")
    millis, nonce, hotkey = headers["x-tao-timestamp"], headers["x-tao-nonce"], headers["x-tao-signed-by"]
    if not _TAO_MILLIS.match(millis):
        raise AuthError("X-Tao-Timestamp must be Unix time in milliseconds")
    if not _TAO_NONCE.match(nonce):
        raise AuthError("X-Tao-Nonce must be 8-128 letters, digits, '-' or '_'")
    if not is_ss58(hotkey):
        raise AuthError("X-Tao-Signed-By is not an ss58 address")
    ttl = _check_fresh(int(millis) / 1000, time.time() if now is None else now, max_age_s, max_skew_s)
    encoded = headers["x-tao-signature"]
    try:
        raw = base64.b64decode(encoded, validate=True) if len(encoded) <= 100 else b""
    except (binascii.Error, ValueError):
        raise AuthError("Invalid signature: not base64") from None
    message = f"{hashlib.sha256(body).hexdigest()}.{nonce}.{millis}".encode()
    _check_signature(hotkey, message, raw)
    return Caller(hotkey=hotkey, replay_key=f"tao:{hotkey}:{nonce}", replay_ttl=ttl)


class _CapturedNonce:
    """A nonce store that lets ``http_auth.verify`` pass and hands the nonce to the ledger.

    ``verify`` consults its store last, after the signature; the ledger then
    claims the nonce atomically with the quota charge, shared by all workers.
    """

    def __init__(self, retention: float) -> None:
        self.retention = retention
        self.nonce: int | None = None

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        self.nonce = nonce_ns
        return True


def has_btauth_headers(headers: Mapping[str, str]) -> bool:
    """True when the request carries ``btauth/1`` headers (then they, not the body, authenticate it)."""
    return http_auth.HEADER_SIGNATURE.lower() in headers or http_auth.HEADER_HOTKEY.lower() in headers


def verify_btauth(
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    path: str,
    gateway_hotkey: str | None,
    now_ns: int | None = None,
) -> Caller:
    """Check a ``btauth/1`` request: receiver-bound to this gateway, fresh, exact body, valid signature."""
    if gateway_hotkey is None:
        raise AuthError("btauth/1 is not enabled on this gateway (no SN46_GATEWAY_HOTKEY)")
    window = http_auth.DEFAULT_MAX_AGE + http_auth.DEFAULT_ALLOWED_SKEW
    captured = _CapturedNonce(retention=window)
    try:
        caller = http_auth.verify(
            headers,
            body,
            method=method,
            path=path,
            self_hotkey_ss58=gateway_hotkey,
            nonce_store=captured,
            now_ns=now_ns,
        )
    except http_auth.AuthError as exc:
        raise AuthError(f"{type(exc).__name__}: {exc}") from None
    return Caller(
        hotkey=caller.hotkey_ss58,
        replay_key=f"btauth:{caller.hotkey_ss58}:{caller.nonce_ns}",
        replay_ttl=int(window) + 1,
    )
