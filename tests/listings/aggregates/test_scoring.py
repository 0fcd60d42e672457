"""The score formula and pass rules at their edges, on hand-written per-miner statistics."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sn46_pipelines.listings import duck
from sn46_pipelines.listings.scoring import FAILURE_REASONS, ScoringRules, score_sql

#: A miner that passes everything with room to spare, at exactly full credit.
PERFECT = {
    "rows_accepted": 1000,
    "rows_submitted": 1000,
    "completeness": 1.0,
    "copy_rate": 0.0,
    "duplicate_rate": 0.0,
    "plausibility_rate": 1.0,
    "zip_match_rate": 1.0,
}


def score(rules: ScoringRules = ScoringRules(), **changes) -> dict:
    """``score_sql`` on one miner; in one round every submitted row is accepted or rejected."""
    row = {**PERFECT, **changes}
    submitted = row["rows_submitted"]
    row["acceptance_rate"] = row["rows_accepted"] / submitted if submitted else None
    stats = pa.Table.from_pylist(
        [row],
        schema=pa.schema(
            [("rows_accepted", pa.int64()), ("rows_submitted", pa.int64())]
            + [(k, pa.float64()) for k in [*list(PERFECT)[2:], "acceptance_rate"]]
        ),
    )
    con = duck.connect()
    con.register("stats", stats)
    (row,) = con.sql(score_sql(rules, "stats")).to_arrow_table().to_pylist()
    return row


def test_a_perfect_miner_at_full_credit_scores_one_and_passes():
    result = score()
    assert (result["score"], result["passed"], result["reasons"]) == (1.0, True, [])


def test_volume_saturates_at_full_credit():
    assert score(rows_accepted=5000, rows_submitted=5000)["score"] == 1.0
    assert score(rows_accepted=250, rows_submitted=250)["score"] == pytest.approx(0.25)


def test_the_factors_multiply():
    # volume 0.5 * acceptance 400/500 * completeness 0.9 * (1 - copy rate 0.02)
    result = score(rows_accepted=500, rows_submitted=625, completeness=0.9, copy_rate=0.02)
    assert result["score"] == pytest.approx(0.5 * 0.8 * 0.9 * 0.98)


def test_copying_scores_lower_than_submitting_nothing_extra():
    honest = score(rows_accepted=500, rows_submitted=500)["score"]
    copier = score(rows_accepted=500, rows_submitted=1000, copy_rate=0.5)["score"]
    assert copier == pytest.approx(honest / 4)


def test_no_rows_scores_zero_and_fails():
    result = score(
        rows_accepted=0,
        rows_submitted=0,
        completeness=None,
        copy_rate=None,
        duplicate_rate=None,
        plausibility_rate=None,
        zip_match_rate=None,
    )
    assert (result["score"], result["passed"]) == (0.0, False)
    assert result["reasons"] == ["too_few_rows", "low_score"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"rows_accepted": 99, "rows_submitted": 99}, "too_few_rows"),
        ({"copy_rate": 0.0101}, "copies"),
        ({"duplicate_rate": 0.1001}, "duplicates"),
        ({"plausibility_rate": 0.8999}, "implausible_values"),
        ({"zip_match_rate": 0.8999}, "zip_mismatches"),
        ({"completeness": 0.5999}, "incomplete"),
    ],
)
def test_each_threshold_fails_just_past_it_with_its_reason(changes, reason):
    result = score(ScoringRules(min_score=0.0), **changes)  # only the threshold under test can fail
    assert result["passed"] is False
    assert result["reasons"] == [reason]


def test_exactly_at_each_threshold_passes():
    rules = ScoringRules()
    result = score(
        rows_accepted=rules.min_rows,
        rows_submitted=rules.min_rows,
        copy_rate=rules.max_copy_rate,
        duplicate_rate=rules.max_duplicate_rate,
        plausibility_rate=rules.min_plausibility_rate,
        zip_match_rate=rules.min_zip_match_rate,
        completeness=rules.min_completeness,
        rules=ScoringRules(min_score=0.0),
    )
    assert (result["passed"], result["reasons"]) == (True, [])


def test_low_score_fails_on_its_own_and_thresholds_are_configurable():
    assert score(rows_accepted=150, rows_submitted=150)["reasons"] == ["low_score"]  # 0.15 < 0.2
    assert score(ScoringRules(min_score=0.1), rows_accepted=150, rows_submitted=150)["passed"] is True


def test_several_failures_are_all_listed_in_a_fixed_order():
    result = score(copy_rate=0.5, completeness=0.1, rows_accepted=10, rows_submitted=20)
    assert result["reasons"] == ["too_few_rows", "low_score", "copies", "incomplete"]
    assert set(result["reasons"]) <= set(FAILURE_REASONS)
