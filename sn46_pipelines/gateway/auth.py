"""Who sent a request: a signed commitment (today's miners) or a ``btauth/1`` signed request.

Both end in a :class:`Caller` carrying a replay key. The replay key is not
claimed here: the app first checks metagraph membership, then claims the key
and charges the quota in one atomic ledger call, so a replay never costs
quota and nobody can spend a quota without a valid signature.

Legacy commitments are signed strings such as
``s3:data:access:{coldkey}:{hotkey}:{timestamp}``, hex signature with or
without ``0x``. sr25519 signatures are randomized, so the signature bytes
identify one signing act: the same request sent twice is a replay, two
requests signed separately are not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bittensor import http_auth
from bittensor.sp_core import Keypair

_SS58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{46,48}$")
SIGNATURE_BYTES = 64


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
    if now - timestamp > max_age_s or (expiry is not None and now > expiry):
        raise AuthError("Invalid timestamp: the signed timestamp is too old")
    if timestamp - now > max_skew_s:
        raise AuthError("Invalid timestamp: the signed timestamp is in the future")
    try:
        raw = bytes.fromhex(signature.removeprefix("0x").removeprefix("0X"))
    except ValueError:
        raise AuthError("Invalid signature: not hex") from None
    if len(raw) != SIGNATURE_BYTES:
        raise AuthError("Invalid signature")
    try:
        valid = Keypair(ss58_address=hotkey).verify(commitment.encode(), raw)
    except ValueError:  # an address that does not decode
        valid = False
    if not valid:
        raise AuthError("Invalid signature")
    return Caller(
        hotkey=hotkey,
        replay_key=f"sig:{raw.hex()}",
        replay_ttl=max(1, int(timestamp + max_age_s - now) + 1),
    )


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
