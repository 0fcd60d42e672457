"""One row per zpid per miner: the newest scrape wins.

Most zpids occur once, so only rows whose zpid repeats are sorted; a hotkey
of millions of rows with few duplicates costs one hash pass.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def newest_per_key(
    keys: pa.ChunkedArray, eligible: np.ndarray, scraped_at: np.ndarray, uploaded_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eligible rows that lose to a newer row with the same key, and the row each loses to.

    Newest means the latest ``scraped_at``, then the latest ``uploaded_at``,
    then the later position (rows of a re-uploaded file replace the earlier copy).
    Returns (losers, winners) as position arrays of equal length.
    """
    empty = np.empty(0, dtype=np.int64)
    if not eligible.any():
        return empty, empty
    encoded = pc.dictionary_encode(keys.combine_chunks() if keys.num_chunks != 1 else keys.chunk(0))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(codes[eligible], minlength=len(encoded.dictionary))
    repeated = np.flatnonzero(eligible & (counts[np.maximum(codes, 0)] > 1) & (codes >= 0))
    if repeated.size == 0:
        return empty, empty
    order = repeated[np.lexsort((repeated, uploaded_at[repeated], scraped_at[repeated], codes[repeated]))]
    group = codes[order]
    is_last = np.append(group[1:] != group[:-1], True)
    winner_of_group = order[is_last]
    group_number = np.cumsum(np.append(True, group[1:] != group[:-1])) - 1
    losers = order[~is_last]
    return losers, winner_of_group[group_number[~is_last]]
