"""One row per zpid per miner: the newest scrape wins.

Most zpids occur once, so rows are first grouped by one cheap integer sort
of their keys, and only rows whose key repeats are ordered by age. zpids are
numeric in practice: those are sorted as integers without hashing a single
string; any other key text falls back to dictionary codes.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def newest_per_key(
    keys: pa.ChunkedArray, eligible: np.ndarray, scraped_at: np.ndarray, uploaded_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eligible rows that lose to a newer row with the same key, and the row each loses to.

    Newest means the latest ``scraped_at``; between rows of one scrape, the
    first upload (it keeps the provenance that decides who uploaded a listing
    first, so re-sending one's own listing never makes one a copier), then the
    later position.
    Rows with a null key never compete. Returns (losers, winners), position arrays of equal length.
    """
    empty = np.empty(0, dtype=np.int64)
    rows = np.flatnonzero(eligible & pc.is_valid(keys).to_numpy(zero_copy_only=False))
    if rows.size < 2:
        return empty, empty
    codes = _integer_codes(keys)
    by_key = rows[np.argsort(codes[rows], kind="stable")]
    same_as_next = codes[by_key[1:]] == codes[by_key[:-1]]
    repeated_mask = np.zeros(by_key.size, dtype=bool)
    repeated_mask[:-1] |= same_as_next
    repeated_mask[1:] |= same_as_next
    repeated = by_key[repeated_mask]
    if repeated.size == 0:
        return empty, empty
    order = repeated[np.lexsort((repeated, -uploaded_at[repeated], scraped_at[repeated], codes[repeated]))]
    group = codes[order]
    starts_group = np.append(True, group[1:] != group[:-1])
    is_last = np.append(starts_group[1:], True)
    group_number = np.cumsum(starts_group) - 1
    losers = order[~is_last]
    return losers, order[is_last][group_number[~is_last]]


def _integer_codes(keys: pa.ChunkedArray) -> np.ndarray:
    """An int64 per row, equal exactly when the keys are equal (nulls read as 0; callers skip them)."""
    try:
        numbers = keys.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = None
    # "007" and "7" parse alike but are different keys: numbers only if they print back as the keys.
    if numbers is not None and pc.all(pc.equal(numbers.cast(pa.string()), keys)).as_py() is not False:
        return pc.fill_null(numbers, 0).to_numpy(zero_copy_only=False)
    encoded = pc.dictionary_encode(keys.combine_chunks() if keys.num_chunks != 1 else keys.chunk(0))
    return pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
