"""Where each kind of object lives inside the data store (the bucket miners upload to).

Every key and prefix of the data store is named here, and only here, so the
pipeline, the upload gateway and the IAM policies agree on them. This module
imports nothing (no pyarrow, nothing else of the project), so any of those
may import it.

===================================================  ========================================================
Key                                                  What lives there, and who writes it
===================================================  ========================================================
``data/hotkey={hk}/``                                A miner's folder (:func:`miner_folder`): the only place
                                                     its presigned POST lets it write. Never modified by the
                                                     pipeline, only read.
``data/hotkey={hk}/job_id={job}/``                   A job's parquet files (:data:`FOLDER_STRUCTURE`,
                                                     :func:`job_folder`).
``data/hotkey={hk}/epoch={e}/zipcode={zip}/``        An epoch's JSON documents, one folder per zip code
                                                     (:func:`epoch_folder`); today's resi client writes them
                                                     under ``data/hotkey={hk}/data/hotkey={hk}/`` again.
``curated/hotkey={hk}/``                             Ingest's committed state of a hotkey: curated listings,
                                                     quarantine and ``manifest.json`` (:func:`manifest_key`),
                                                     which names the files that count.
``audit/hotkey={hk}/``                               Rejections that left the freshness window, kept for
                                                     people to read (:func:`audit_prefix`); no job reads them.
``aggregates/{table}.parquet``                       The published aggregate tables (:func:`aggregate_key`,
                                                     :data:`AGGREGATE_TABLES`).
``aggregates/rejected/{table}.parquet``              Aggregates that failed a blocking check: kept for
                                                     inspection, never read as current.
``views/sn46.duckdb``                                The DuckDB file validators download
                                                     (:data:`VIEWS_FILE_KEY`).
``metagraph.json``                                   The subnet's metagraph snapshot (:data:`METAGRAPH_KEY`),
                                                     written by an operator's job or the demo; says who is
                                                     registered.
===================================================  ========================================================

The upload file names inside the leaf folders (``data_{YYYYmmdd_HHMMSS}_{rows}.parquet``,
``data_{YYYYmmdd_HHMMSS}.json``) and what they declare are parsed in :mod:`.keys`, with the
patterns :data:`JOB_UPLOAD_KEY` and :data:`EPOCH_UPLOAD_KEY` below.
"""

from __future__ import annotations

import re

# --- The upload area: miners write here, the pipeline only reads. ---------------------------------

#: Prefix of the miners' upload area; nothing under it is ever modified by the pipeline.
UPLOAD_PREFIX = "data/"
#: Name of a miner's folder below :data:`UPLOAD_PREFIX`, before its ss58 hotkey.
HOTKEY_FOLDER = "hotkey="
#: What every miner folder starts with: validators list all miners with it.
MINERS_PREFIX = UPLOAD_PREFIX + HOTKEY_FOLDER
#: Folder names inside a miner's folder: a job's, or an epoch's and its zip codes'.
JOB_FOLDER = "job_id="
EPOCH_FOLDER = "epoch="
ZIPCODE_FOLDER = "zipcode="
#: The job layout of miner uploads, ``data/hotkey={hotkey}/job_id={job_id}/{file}``, as today's clients
#: show it (the gateway's ``structure_info``); grants cover the whole miner folder (:func:`miner_folder`).
FOLDER_STRUCTURE = f"{MINERS_PREFIX}{{hotkey_id}}/{JOB_FOLDER}{{job_id}}/"
#: The epoch/zipcode layout, ``data/hotkey={hotkey}/epoch={epoch_id}/zipcode={zipcode}/{file}``.
EPOCH_FOLDER_STRUCTURE = f"{MINERS_PREFIX}{{hotkey}}/{EPOCH_FOLDER}{{epoch_id}}/{ZIPCODE_FOLDER}{{zipcode}}/"

#: A job's parquet upload: ``data/hotkey={hk}/job_id={job}/data_{YYYYmmdd_HHMMSS}_{rows}[_{16 hex}].parquet``.
JOB_UPLOAD_KEY = re.compile(
    r"data/hotkey=(?P<hotkey>[^/=]+)/job_id=(?P<job_id>[^/]+)/"
    r"data_(?P<stamp>\d{8}_\d{6})_(?P<rows>\d+)(?:_(?P<suffix>[0-9a-f]{16}))?\.parquet"
)
#: An epoch/zipcode document, also with the miner folder spelled twice:
#: ``data/hotkey={hk}/[data/hotkey={hk}/]epoch={epoch}/zipcode={zip}/data_{YYYYmmdd_HHMMSS}.json``.
#: ``epoch=`` ids are times like ``2026-12-03T08-00-00``: no ``/`` and no ``_`` (the job id joins with ``_``).
EPOCH_UPLOAD_KEY = re.compile(
    r"data/hotkey=(?P<hotkey>[^/=]+)/(?:data/hotkey=(?P=hotkey)/)?"
    r"epoch=(?P<epoch>[0-9A-Za-z:.+-]+)/zipcode=(?P<zip>\d{5})/data_(?P<stamp>\d{8}_\d{6})\.json"
)


def miner_folder(hotkey: str) -> str:
    """``data/hotkey={hotkey}/``: every upload of ``hotkey``, and the only folder it may write to.

    ``miner_folder("*")`` is the IAM pattern of every miner's folder.
    """
    return f"{MINERS_PREFIX}{hotkey}/"


def job_folder(hotkey: str, job_id: str) -> str:
    """``data/hotkey={hotkey}/job_id={job_id}/``: where a job's parquet files go."""
    return f"{miner_folder(hotkey)}{JOB_FOLDER}{job_id}/"


def epoch_folder(hotkey: str, epoch_id: str, zipcode: str, *, doubled: bool = False) -> str:
    """``data/hotkey={hotkey}/epoch={epoch_id}/zipcode={zipcode}/``: where a zip code's epoch documents go.

    ``doubled`` spells it as today's resi client does, the miner folder twice.
    """
    home = miner_folder(hotkey) * (2 if doubled else 1)
    return f"{home}{EPOCH_FOLDER}{epoch_id}/{ZIPCODE_FOLDER}{zipcode}/"


# --- Ingest's committed state, per hotkey. --------------------------------------------------------

#: Each hotkey's curated listings, quarantine and manifest (the commit).
CURATED_ROOT = "curated/"
#: Rejections that left the freshness window, kept for people to read; no job reads them.
AUDIT_ROOT = "audit/"
#: The manifest's name in a hotkey's curated folder.
MANIFEST_NAME = "manifest.json"


def curated_prefix(hotkey: str) -> str:
    """``curated/hotkey={hotkey}/``."""
    return f"{CURATED_ROOT}{HOTKEY_FOLDER}{hotkey}/"


def manifest_key(hotkey: str) -> str:
    """``curated/hotkey={hotkey}/manifest.json``: the files that count, swapped in one write."""
    return curated_prefix(hotkey) + MANIFEST_NAME


def audit_prefix(hotkey: str) -> str:
    """``audit/hotkey={hotkey}/``."""
    return f"{AUDIT_ROOT}{HOTKEY_FOLDER}{hotkey}/"


# --- What validators read. ------------------------------------------------------------------------

#: Where ``listing_aggregates`` publishes its tables, one parquet file each.
AGGREGATES_PREFIX = "aggregates/"
#: Where it writes them instead when a blocking check failed: kept for inspection, never read as current.
REJECTED_AGGREGATES_PREFIX = "aggregates/rejected/"
#: The tables ``listing_aggregates`` computes, each written to :func:`aggregate_key`.
AGGREGATE_TABLES: tuple[str, ...] = (
    "miner_scores",
    "miner_job_stats",
    "zipcode_stats",
    "cross_miner_duplicates",
)
#: The DuckDB file validators download: views over curated data and aggregates.
VIEWS_FILE_KEY = "views/sn46.duckdb"


def aggregate_key(name: str, prefix: str = AGGREGATES_PREFIX) -> str:
    """Store key of one aggregate table (``aggregates/{name}.parquet``)."""
    return f"{prefix}{name}.parquet"


# --- The subnet. ----------------------------------------------------------------------------------

#: Where the data store holds the subnet's current snapshot (an operator's job, or the demo, writes it).
METAGRAPH_KEY = "metagraph.json"
