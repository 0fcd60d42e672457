"""From curated listings to the model's input vector, and the split that keeps validation honest.

The model's input is a float32 ``(batch, N)`` vector of *raw* values in the
order of :attr:`FeatureSpec.columns`: the numeric columns as listed (a missing
value replaced by its training median) followed by one-hot blocks for the
categorical columns (an unseen or rare category lights the block's
``<other>`` slot). Bounding, scaling (``log1p`` of areas and days,
standardization) and the location encoding happen inside the network, so
the exported ONNX graph takes listings almost as they come and a validator
needs nothing but ``feature_config.json`` to build its input.

``lot_size`` and ``year_built`` arrive only with epoch/zipcode uploads, and
``days_on_zillow`` and ``home_status`` are absent from the serving API's
older clients: a table without them reads them as missing, so the same
model serves either. N stays within SN46's ``10 <= N <= 76`` (:data:`MAX_INPUTS`):
a metro with more zip codes than fit keeps the most frequent ones.

Training and serving share :func:`encode`; serving builds a table from JSON
with :func:`listings_table` first, so there is one encoding code path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Identifies the layout of ``feature_config.json``; bump it when the encoding changes meaning.
FORMAT = "sn46-price-model/2"

#: Numeric inputs, and whether the network takes their ``log1p`` (areas span decades, days on market too).
NUMERIC: tuple[tuple[str, bool], ...] = (
    ("living_area", True),
    ("bedrooms", False),
    ("bathrooms", False),
    ("latitude", False),
    ("longitude", False),
    ("lot_size", True),
    ("year_built", False),
    ("days_on_zillow", True),
)
#: The coordinate columns: a 1 % move in one is tens of kilometres, so robustness is judged without them too.
COORDINATES: tuple[str, ...] = ("latitude", "longitude")
#: Categorical inputs, one-hot encoded over their training vocabulary (zip codes last: they are trimmed).
CATEGORICAL: tuple[str, ...] = ("home_type", "home_status", "zip_code")
#: Inputs a table may lack entirely (read as missing): uploads before epoch documents, older API clients.
OPTIONAL: frozenset[str] = frozenset({"lot_size", "year_built", "days_on_zillow", "home_status"})
#: SN46 accepts a float32 input of shape ``(batch, N)`` with ``MIN_INPUTS <= N <= MAX_INPUTS``.
MIN_INPUTS, MAX_INPUTS = 10, 76
#: The slot of a category the training data did not have (or had too rarely to learn).
OTHER = "<other>"

#: Columns a training table needs besides the features.
TARGET = "price"
KEY = "zpid"

#: Types the encoder reads columns as; dictionary-encoded or integer inputs are cast to these.
INPUT_SCHEMA = pa.schema(
    [pa.field(name, pa.float64()) for name, _ in NUMERIC]
    + [pa.field(name, pa.string()) for name in CATEGORICAL]
)


@dataclass(frozen=True, slots=True)
class NumericFeature:
    """One numeric input: its training median fills gaps; inputs are clipped to ``[low, high]`` (the
    training range) in the network; ``mean``/``std`` are of the clipped (logged) value."""

    name: str
    log: bool
    fill: float
    low: float
    high: float
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class CategoricalFeature:
    """One categorical input: a one-hot block over ``vocabulary`` plus a trailing :data:`OTHER` slot."""

    name: str
    vocabulary: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.vocabulary) + 1


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Everything needed to turn listings into model inputs and model outputs into prices.

    Fitted on the training split only, so validation rows never shape the
    normalization or the vocabularies they are scored with.
    """

    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    target_mean: float
    target_std: float
    target_low: float
    """Smallest and largest training log price: the network's output is bounded to them plus a margin."""
    target_high: float

    @property
    def columns(self) -> list[str]:
        """Input column names in vector order (``home_type=CONDO``, ``zip_code=<other>``, ...)."""
        names = [f.name for f in self.numeric]
        for feature in self.categorical:
            names += [f"{feature.name}={value}" for value in (*feature.vocabulary, OTHER)]
        return names

    @property
    def n_inputs(self) -> int:
        return len(self.numeric) + sum(f.width for f in self.categorical)

    def input_normalization(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per input column: take-log mask, mean and std (one-hot columns pass through as 0/1)."""
        n = len(self.numeric)
        log = np.zeros(self.n_inputs, dtype=bool)
        mean = np.zeros(self.n_inputs, dtype=np.float32)
        std = np.ones(self.n_inputs, dtype=np.float32)
        log[:n] = [f.log for f in self.numeric]
        mean[:n] = [f.mean for f in self.numeric]
        std[:n] = [f.std for f in self.numeric]
        return log, mean, std

    def input_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per input column, the range the network clips it to: the training range, 0..1 for one-hots."""
        n = len(self.numeric)
        low = np.zeros(self.n_inputs, dtype=np.float32)
        high = np.ones(self.n_inputs, dtype=np.float32)
        low[:n] = [f.low for f in self.numeric]
        high[:n] = [f.high for f in self.numeric]
        return low, high

    def column_indices(self, names: Iterable[str]) -> list[int]:
        """Positions of the named numeric columns in the input vector."""
        wanted = set(names)
        return [i for i, f in enumerate(self.numeric) if f.name in wanted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "columns": self.columns,
            "numeric": [asdict(f) for f in self.numeric],
            "categorical": [{"name": f.name, "vocabulary": list(f.vocabulary)} for f in self.categorical],
            "other": OTHER,
            "target": {
                "name": "log_price",
                "mean": self.target_mean,
                "std": self.target_std,
                "low": self.target_low,
                "high": self.target_high,
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        if raw.get("format") != FORMAT:
            raise ValueError(f"unsupported feature config format {raw.get('format')!r} (expected {FORMAT!r})")
        spec = cls(
            numeric=tuple(NumericFeature(**f) for f in raw["numeric"]),
            categorical=tuple(
                CategoricalFeature(f["name"], tuple(f["vocabulary"])) for f in raw["categorical"]
            ),
            target_mean=float(raw["target"]["mean"]),
            target_std=float(raw["target"]["std"]),
            target_low=float(raw["target"]["low"]),
            target_high=float(raw["target"]["high"]),
        )
        if spec.columns != list(raw["columns"]):
            raise ValueError(
                "feature config columns disagree with its features; the file was edited or is corrupt"
            )
        return spec


def fit_spec(table: pa.Table, *, min_category_count: int = 5, max_inputs: int = MAX_INPUTS) -> FeatureSpec:
    """Medians, ranges, normalization and vocabularies of a (training) table with features and ``price``.

    Categories seen fewer than ``min_category_count`` times go to the
    :data:`OTHER` slot: an embedding trained on three rows learns noise.
    When the vector would be wider than ``max_inputs``, the zip-code block
    keeps its most frequent zips (the rest share ``<other>``, where the
    coordinates still place them).
    """
    if table.num_rows == 0:
        raise ValueError("cannot fit features on an empty table")
    table = _conform(table)
    numeric = []
    for name, log in NUMERIC:
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        known = values[np.isfinite(values)]
        fill = float(np.median(known)) if known.size else 0.0
        values = np.where(np.isfinite(values), values, fill)
        low = max(float(values.min()), 0.0) if log else float(values.min())  # log1p needs x > -1
        high = max(float(values.max()), low)
        scaled = np.log1p(np.clip(values, low, high)) if log else values
        spread = _nonzero(float(scaled.std()))
        numeric.append(NumericFeature(name, log, fill, low, high, float(scaled.mean()), spread))
    categorical = []
    for name in CATEGORICAL:
        counts = pc.value_counts(table.column(name).drop_null()).to_pylist()
        frequent = sorted((-c["counts"], c["values"]) for c in counts if c["counts"] >= min_category_count)
        categorical.append([value for _, value in frequent])
    room = max_inputs - len(numeric) - sum(len(v) + 1 for v in categorical[:-1]) - 1
    if room < 0:
        raise ValueError(f"max_inputs {max_inputs} leaves no room for the zip-code block")
    categorical[-1] = categorical[-1][:room]
    target = log_prices(table)
    return FeatureSpec(
        tuple(numeric),
        tuple(CategoricalFeature(name, tuple(sorted(v))) for name, v in zip(CATEGORICAL, categorical)),
        float(target.mean()),
        _nonzero(float(target.std())),
        float(target.min()),
        float(target.max()),
    )


def encode(table: pa.Table, spec: FeatureSpec) -> np.ndarray:
    """The float32 ``(rows, spec.n_inputs)`` input matrix of ``table`` (feature columns only are read)."""
    table = _conform(table)
    out = np.zeros((table.num_rows, spec.n_inputs), dtype=np.float32)
    for i, feature in enumerate(spec.numeric):
        values = table.column(feature.name).to_numpy(zero_copy_only=False).astype(np.float64)
        out[:, i] = np.where(np.isfinite(values), values, feature.fill)
    offset = len(spec.numeric)
    rows = np.arange(table.num_rows)
    for category in spec.categorical:
        slots = {value: j for j, value in enumerate(category.vocabulary)}
        other = len(category.vocabulary)
        index = [slots.get(v, other) for v in table.column(category.name).to_pylist()]
        out[rows, offset + np.asarray(index, dtype=np.int64)] = 1.0
        offset += category.width
    return out


def log_prices(table: pa.Table) -> np.ndarray:
    """Natural log of ``price``: the regression target (errors in log space are relative errors)."""
    return np.log(table.column(TARGET).to_numpy(zero_copy_only=False).astype(np.float64))


def listings_table(listings: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A feature table from JSON-like listings; absent keys are missing values, extra keys are ignored."""
    return pa.table(
        [pa.array([row.get(f.name) for row in listings], f.type) for f in INPUT_SCHEMA], schema=INPUT_SCHEMA
    )


def prepare(table: pa.Table) -> pa.Table:
    """The rows a model can learn from, each listing once, in an order that depends only on the data.

    Rows without a positive finite price are dropped; a zpid seen more than
    once (the same home from several miners, or sold twice) keeps its newest
    row. The result is sorted by zpid, so any source order (DuckDB scans are
    parallel) yields the same table, the same data version and the same model.
    """
    table = _conform(table)
    columns = [KEY, TARGET, *INPUT_SCHEMA.names] + (["datetime"] if "datetime" in table.column_names else [])
    table = _plain(table.select(columns))
    price = table.column(TARGET)
    keep = pc.and_(pc.is_finite(price), pc.greater(price, 0.0))
    table = table.filter(pc.and_(pc.fill_null(keep, False), pc.is_valid(table.column(KEY))))
    newest_first = [(KEY, "ascending")] + ([("datetime", "descending")] if "datetime" in columns else [])
    table = table.take(pc.sort_indices(table, sort_keys=[*newest_first, (TARGET, "descending")]))
    zpids = table.column(KEY).to_numpy(zero_copy_only=False)
    first = np.ones(len(zpids), dtype=bool)
    first[1:] = zpids[1:] != zpids[:-1]
    return table.filter(pa.array(first))


def zpid_hashes(zpids: Iterable[str]) -> np.ndarray:
    """A stable 64-bit hash per zpid (not Python's ``hash``, which changes per process)."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(z.encode(), digest_size=8).digest(), "little") for z in zpids],
        dtype=np.uint64,
    )


def validation_mask(hashes: np.ndarray, val_percent: int) -> np.ndarray:
    """True for rows in validation: a zpid's bucket never changes, so it never crosses the split."""
    if not 0 < val_percent < 100:
        raise ValueError(f"val_percent must be between 1 and 99, not {val_percent}")
    return (hashes % np.uint64(100)) < np.uint64(val_percent)


def limit_rows(table: pa.Table, hashes: np.ndarray, row_limit: int) -> tuple[pa.Table, np.ndarray]:
    """At most ``row_limit`` rows (0: all), a sample that is the same every run and for every split.

    Rows are ranked by the hash bits above the split bucket, so the sample
    keeps the train/validation proportions.
    """
    if row_limit <= 0 or row_limit >= table.num_rows:
        return table, hashes
    keep = np.sort(np.argsort(hashes // np.uint64(100), kind="stable")[:row_limit])
    return table.take(pa.array(keep)), hashes[keep]


def data_version(table: pa.Table) -> str:
    """``sha256:`` of a prepared table's content: the same listings give the same id on any machine."""
    digest = hashlib.sha256()
    for name in table.column_names:
        digest.update(json.dumps([name, str(table.schema.field(name).type)]).encode())
        column = table.column(name)
        if pa.types.is_string(column.type):
            for value in column.to_pylist():
                digest.update(b"\x00" if value is None else b"\x01" + value.encode() + b"\xff")
        else:
            values = column.to_numpy(zero_copy_only=False)
            digest.update(np.ascontiguousarray(values).tobytes())
            digest.update(np.asarray(column.is_null().to_numpy(zero_copy_only=False)).tobytes())
    return f"sha256:{digest.hexdigest()}"


def _conform(table: pa.Table) -> pa.Table:
    missing = [name for name in INPUT_SCHEMA.names if name not in table.column_names]
    required = [name for name in missing if name not in OPTIONAL]
    if required:
        raise ValueError(f"listings lack feature columns {required}")
    for name in missing:
        field = INPUT_SCHEMA.field(name)
        table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return _plain(table)


def _plain(table: pa.Table) -> pa.Table:
    """Feature columns as :data:`INPUT_SCHEMA` types (curated tables dictionary-encode and use int32)."""
    for i, name in enumerate(table.column_names):
        if name in INPUT_SCHEMA.names:
            wanted = INPUT_SCHEMA.field(name).type
            if table.schema.field(name).type != wanted:
                table = table.set_column(i, name, table.column(name).cast(wanted))
        elif name == KEY and table.schema.field(name).type != pa.string():
            table = table.set_column(i, name, table.column(name).cast(pa.string()))
    return table


def _nonzero(std: float) -> float:
    """A usable divisor: a constant column (one city, say) has std 0."""
    return std if std > 1e-6 else 1.0
