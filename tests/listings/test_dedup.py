"""newest_per_key: the newest row per key wins, on integer-like and arbitrary keys alike."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sn46_pipelines.listings.dedup import newest_per_key


def losers_and_winners(keys, eligible=None, scraped=None, uploaded=None) -> list[tuple[int, int]]:
    n = len(keys)
    losers, winners = newest_per_key(
        pa.chunked_array([pa.array(keys[: n // 2], pa.string()), pa.array(keys[n // 2 :], pa.string())]),
        np.ones(n, dtype=bool) if eligible is None else np.array(eligible),
        np.zeros(n, dtype=np.int64) if scraped is None else np.array(scraped),
        np.zeros(n, dtype=np.int64) if uploaded is None else np.array(uploaded),
    )
    return sorted(zip(losers.tolist(), winners.tolist()))


@pytest.mark.parametrize("keys", [["10", "20", "10", "30", "10"], ["a", "b", "a", "c", "a"]])
def test_later_position_wins_a_tie(keys) -> None:
    assert losers_and_winners(keys) == [(0, 4), (2, 4)]


def test_newest_scrape_then_first_upload_wins() -> None:
    """Between rows of one scrape, the first upload keeps its provenance (who uploaded it first)."""
    keys = ["5", "5", "5", "6", "6"]
    scraped = [3, 1, 3, 1, 1]
    uploaded = [1, 9, 2, 5, 4]
    assert losers_and_winners(keys, scraped=scraped, uploaded=uploaded) == [(1, 0), (2, 0), (3, 4)]


def test_ineligible_and_null_rows_never_compete() -> None:
    keys = ["1", "1", None, None, "2"]
    assert losers_and_winners(keys, eligible=[True, False, True, True, True]) == []


def test_keys_that_only_look_alike_as_numbers_stay_apart() -> None:
    assert losers_and_winners(["007", "7", "7", "+7"]) == [(1, 2)]
    assert losers_and_winners(["1", "x1", "1"]) == [(0, 2)]
