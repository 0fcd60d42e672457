"""Reading a demo seed back: its files, and the planted defects of one round found in them."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.demo import SeededFile, SeededMiner, SeedReport
from sn46_pipelines.listings.keys import parse_upload_key
from sn46_pipelines.objectstore import ObjectStore


def read(store: ObjectStore, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get(key)))


def miner_with(report: SeedReport, defect: str) -> SeededMiner:
    return next(m for m in report.miners if defect in m.defects)


def files_in(miner: SeededMiner, round_index: int) -> list[SeededFile]:
    return [f for f in miner.files if f.round == round_index]


def assert_planted(store: ObjectStore, report: SeedReport, round_index: int, at: datetime) -> None:
    """Every defect whose miner uploaded in ``round_index`` (at time ``at``) is in that round's files."""

    def tables(defect: str) -> list[tuple[SeededFile, pa.Table | None]]:
        out = []
        for f in files_in(miner_with(report, defect), round_index):
            try:
                out.append((f, read(store, f.key)))
            except pa.ArrowInvalid:
                out.append((f, None))
        return out

    def uploads(defect: str) -> bool:
        return bool(files_in(miner_with(report, defect), round_index))

    if uploads("duplicates"):
        zpids = [z for _, t in tables("duplicates") for z in t.column("zpid").to_pylist()]
        assert len(zpids) - len(set(zpids)) == 18

    if uploads("copied_rows"):
        donor_files = files_in(report.miners[0], round_index)
        donor_rows = {tuple(r.values()) for f in donor_files for r in read(store, f.key).to_pylist()}
        copied = [
            (f, r) for f, t in tables("copied_rows") for r in t.to_pylist() if tuple(r.values()) in donor_rows
        ]
        assert len(copied) == 40
        # The copier uploads later than the donor, by the file name and by the object's time.
        assert len({f.key for f, _ in copied}) == 1
        copy_file = copied[0][0]
        donor_file = next(f for f in donor_files if f.job_id == copy_file.job_id)
        assert parse_upload_key(copy_file.key).timestamp > parse_upload_key(donor_file.key).timestamp
        assert store.head(copy_file.key).mtime >= store.head(donor_file.key).mtime
        # Where both objects get the same (one-second) time, the smaller hotkey is the original.
        assert report.miners[0].hotkey < miner_with(report, "copied_rows").hotkey

    if uploads("impossible_values"):
        bad = pa.concat_tables(t for _, t in tables("impossible_values"))
        assert sum(1 for p in bad.column("price").to_pylist() if not 10_000 <= p <= 50_000_000) == 3
        assert max(bad.column("bedrooms").to_pylist()) == 45

    if uploads("missing_fields"):
        missing = pa.concat_tables(t for _, t in tables("missing_fields"))
        assert missing.column("address").null_count == 1 and missing.column("price").null_count == 1

    if uploads("zip_mismatch"):
        mismatched = sum(
            z != f.job_id.split("_")[3]
            for f, t in tables("zip_mismatch")
            for z in t.column("zip_code").to_pylist()
        )
        assert mismatched == 10

    if uploads("stale_dates"):
        dates = [d for _, t in tables("stale_dates") for d in t.column("datetime").to_pylist()]
        assert sum(d < at - timedelta(days=30) for d in dates) == 12 and sum(d > at for d in dates) == 4

    if uploads("truncated_file"):
        assert sum(t is None for _, t in tables("truncated_file")) == 1

    if uploads("wrong_schema"):
        wrong = [t for _, t in tables("wrong_schema") if "home_status" not in t.column_names]
        assert len(wrong) == 1 and "livingArea" in wrong[0].column_names

    if uploads("zpid_type_drift"):
        zpid_types = {t.schema.field("zpid").type for _, t in tables("zpid_type_drift")}
        assert zpid_types == {pa.int64(), pa.string()}

    if uploads("filename_row_mismatch"):
        lying = [
            (f, t) for f, t in tables("filename_row_mismatch") if parse_upload_key(f.key).rows != t.num_rows
        ]
        assert len(lying) == 1 and parse_upload_key(lying[0][0].key).rows == lying[0][1].num_rows + 7
