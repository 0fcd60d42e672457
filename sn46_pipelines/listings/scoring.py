"""The miner score: one number in [0, 1] per hotkey, and whether the miner passed.

    volume     = min(1, rows_accepted / full_credit_rows)
    acceptance = 1 - rows_rejected / rows_submitted
    score      = volume * acceptance * completeness * (1 - copy_rate)

Over one scoring window (``window``): ``rows_accepted`` counts the miner's
current listings that are not copies, ``rows_submitted`` every row its
uploads of the window held in a readable file, ``rows_rejected`` the
row-level rejections among them plus the copies, and ``copy_rate`` is the
share of current listings another miner uploaded first. Copies therefore
count twice, once as rejected rows (in ``acceptance``) and once as their own
factor, so uploading someone else's listings never raises a score. Every
factor is in [0, 1], so the score is too; a miner with no rows scores 0. A
miner passes when it fails none of the thresholds below; ``reasons`` lists
the ones it failed, by name, so a miner can be told why.

The score is a SQL expression over the per-miner statistics, evaluated in
DuckDB together with the aggregates; thresholds are data (like
:class:`~sn46_pipelines.listings.rules.Rules`) so a validator can change one
without touching the formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class ScoringRules:
    """Score and pass thresholds; the defaults suit SN46's few-thousand-row miners."""

    #: What counts: listings scraped, and uploads ingested, this long before the aggregates run.
    #: Ingest keeps the same window (``Rules.freshness``), so keep the two equal.
    window: timedelta = timedelta(days=30)

    #: Accepted rows at which the volume factor reaches 1.
    full_credit_rows: int = 1000
    #: Fewer accepted rows fail as ``too_few_rows``.
    min_rows: int = 100
    #: A lower score fails as ``low_score``.
    min_score: float = 0.2
    #: More than this share of current listings copied from other miners fails as ``copies``. Two
    #: independent scrapes rarely agree on zpid, price and timestamp at once: 1% allows for chance.
    max_copy_rate: float = 0.01
    #: More than this share of submitted rows repeated within the miner's own uploads fails as ``duplicates``.
    max_duplicate_rate: float = 0.1
    #: Less than this share of submitted rows without an implausible value fails as ``implausible_values``.
    min_plausibility_rate: float = 0.9
    #: Less than this share of submitted rows in the job's zip fails as ``zip_mismatches``.
    min_zip_match_rate: float = 0.9
    #: Accepted rows filling less than this share of the 18 columns on average fail as ``incomplete``.
    min_completeness: float = 0.6

    def failures(self) -> dict[str, str]:
        """Reason code -> SQL condition (over the miner statistics) that makes a miner fail it."""
        return {
            "too_few_rows": f"rows_accepted < {int(self.min_rows)}",
            "low_score": f"score < {float(self.min_score)!r}",
            "copies": f"copy_rate > {float(self.max_copy_rate)!r}",
            "duplicates": f"duplicate_rate > {float(self.max_duplicate_rate)!r}",
            "implausible_values": f"plausibility_rate < {float(self.min_plausibility_rate)!r}",
            "zip_mismatches": f"zip_match_rate < {float(self.min_zip_match_rate)!r}",
            "incomplete": f"completeness < {float(self.min_completeness)!r}",
        }


#: Every reason a miner can fail, in the order ``reasons`` lists them.
FAILURE_REASONS: tuple[str, ...] = tuple(ScoringRules().failures())


def score_sql(rules: ScoringRules, stats: str) -> str:
    """A query adding ``score``, ``passed`` and ``reasons`` to each row of the relation ``stats``.

    ``stats`` needs ``rows_accepted``, ``acceptance_rate``, ``completeness``,
    ``copy_rate``, ``duplicate_rate``, ``plausibility_rate`` and
    ``zip_match_rate``; a null rate (nothing submitted) fails no rate
    threshold, but such a miner has too few rows anyway.
    """
    full_credit = max(int(rules.full_credit_rows), 1)
    score = (
        f"least(1.0, rows_accepted / {full_credit}.0)"
        " * coalesce(acceptance_rate, 0.0)"
        " * coalesce(completeness, 0.0)"
        " * (1.0 - coalesce(copy_rate, 0.0))"
    )
    checks = ", ".join(
        f"CASE WHEN {condition} THEN '{code}' END" for code, condition in rules.failures().items()
    )
    return f"""
        WITH scored AS (SELECT *, {score} AS score FROM {stats}),
        judged AS (
            SELECT *, list_filter([{checks}], lambda r: r IS NOT NULL) AS reasons FROM scored
        )
        SELECT * EXCLUDE (reasons), len(reasons) = 0 AS passed, reasons FROM judged
    """
