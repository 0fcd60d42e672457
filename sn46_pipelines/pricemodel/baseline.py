"""The bar a model must clear: each zip code's median training price.

Location explains most of a home's price, so a model that cannot beat the
local median has learned nothing worth deploying; the blocking asset check
compares against this on the same validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .features import TARGET


@dataclass(frozen=True, slots=True)
class ZipMedianBaseline:
    """Median price per zip code; a zip the training rows lack gets the overall median."""

    medians: dict[str, float]
    overall: float

    @classmethod
    def fit(cls, table: pa.Table) -> ZipMedianBaseline:
        if table.num_rows == 0:
            raise ValueError("cannot fit a baseline on an empty table")
        zips = np.array(table.column("zip_code").fill_null("").to_pylist(), dtype=object)
        prices = table.column(TARGET).to_numpy(zero_copy_only=False).astype(np.float64)
        order = np.argsort(zips, kind="stable")  # one sort, then a median per run of equal zips
        names, starts = np.unique(zips[order], return_index=True)
        groups = np.split(prices[order], starts[1:])
        medians = {str(z): float(np.median(g)) for z, g in zip(names, groups) if z}
        return cls(medians=medians, overall=float(np.median(prices)))

    def predict(self, table: pa.Table) -> np.ndarray:
        """One price per row of ``table`` (which needs a ``zip_code`` column)."""
        return np.array([self.medians.get(z, self.overall) for z in table.column("zip_code").to_pylist()])
