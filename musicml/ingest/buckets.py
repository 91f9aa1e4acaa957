"""Ingestion in buckets of the drop zone, so that several machines can share it.

Every drop-zone path falls in one of ``n`` buckets by a stable hash of the path (not of its
content, so a file stays in its bucket when it is rewritten). :func:`ingest_bucket` accounts for
the entries of one bucket only: it parses them into the lake's parse cache (content-addressed
batches, written atomically, so buckets on different machines never collide) and writes their
rows to ``ingest/buckets/<bucket>.parquet``. The whole-drop-zone ingestion
(:func:`musicml.workflow.ingest_step`) then reads those tables as earlier rows: every file a
bucket has seen is reused by its path, size and modification time, and nothing is parsed twice.

In Dagster this is the partitioned asset ``raw_score_buckets`` (one partition per bucket); a
backfill over its partitions runs the buckets as separate runs, on separate pods under the
Kubernetes run launcher (``deploy/README.md``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from musicml.lake import Lake, read_frame

BUCKETS = 8  # partitions of the drop zone for ingestion on several machines (raw_score_buckets)
BUCKET_DIR = ("ingest", "buckets")


def bucket_of(rel: str, n: int = BUCKETS) -> int:
    """The bucket (0..n-1) of a drop-zone path: a stable hash of its name, the same on every machine."""
    digest = hashlib.blake2b(rel.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def bucket_names(n: int = BUCKETS) -> list[str]:
    """Partition keys: ``00-of-08``, ``01-of-08``, ..."""
    width = len(str(n - 1))
    return [f"{k:0{width}d}-of-{n:0{width}d}" for k in range(n)]


def parse_bucket_name(name: str) -> tuple[int, int]:
    """``(k, n)`` of a partition key ``k-of-n``; ValueError for anything else."""
    k, sep, n = name.partition("-of-")
    if not sep or not k.isdigit() or not n.isdigit() or not 0 <= int(k) < int(n):
        raise ValueError(f"not a bucket name (k-of-n with 0 <= k < n): {name!r}")
    return int(k), int(n)


def bucket_table_path(lake: Lake, name: str) -> Path:
    return lake.path(*BUCKET_DIR, f"{name}.parquet")


def bucket_tables(lake: Lake) -> list[Path]:
    """The rows every bucket ingestion has written, sorted by name."""
    folder = lake.path(*BUCKET_DIR)
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def newest_last(tables: list[Path]) -> list[Path]:
    """The tables that exist, oldest first (by modification time)."""
    return sorted((p for p in tables if p.exists()), key=lambda p: p.stat().st_mtime_ns)


def earlier_rows(tables: list[Path]) -> pl.DataFrame | None:
    """The rows of ``tables`` (the files table and bucket tables) as one ``previous`` table for
    :func:`musicml.ingest.files.ingest`, the last table's row where several name a path; None
    when there are none. Tables of an older schema are read with their missing columns as nulls
    (their files are then read again)."""
    from musicml.ingest.files import FILE_SCHEMA

    frames = []
    for path in tables:
        if path.exists():
            df = read_frame(path)
            missing = [pl.lit(None, dtype=t).alias(c) for c, t in FILE_SCHEMA.items() if c not in df.columns]
            frames.append(df.with_columns(missing).select(list(FILE_SCHEMA)).cast(FILE_SCHEMA))
    if not frames:
        return None
    return pl.concat(frames).unique("path", keep="last", maintain_order=True)
