"""SS58 address checks for hotkeys that arrive as folder names or request fields."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=65_536)
def is_ss58_address(value: str) -> bool:
    """True for a well-formed SS58 address (base58, right length, valid checksum).

    Hotkeys reach us as S3 folder names and JSON fields: anything else, such
    as ``../x`` or a typo, must never become a Dagster partition or a quota key.
    """
    if not 40 <= len(value) <= 60 or not value.isalnum():
        return False
    from bittensor.sp_core import ss58_decode

    try:
        ss58_decode(value)
    except ValueError:
        return False
    return True
