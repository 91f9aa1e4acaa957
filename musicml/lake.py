"""The data lake: where every asset writes, atomic writes, and paths that cannot escape it.

Layout under the lake root (``MUSICML_LAKE``, default ``data_lake``)::

    raw/                 drop zone (``MUSICML_RAW_DIR`` overrides)
    ingest/files.parquet one row per raw file; ingest/cache/<hash>.parquet parse cache
    parsed/              pieces.parquet, notes.parquet
    curated/             deduped.parquet, duplicates.parquet, augmented.parquet, splits.parquet
    tokenizer/           tokenizer.json, token_bytes.npy
    shards/              <split>/shard_00000.parquet, manifest.json
    models/<run>/        checkpoints, evaluation.json, samples/
    catalog.duckdb       DuckDB views over the parquet above
    mlflow.db            MLflow tracking store (sqlite)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class PathEscapeError(ValueError):
    """A path derived from input data would land outside the lake."""


@dataclass(frozen=True)
class Lake:
    """Paths of one lake. Every path an asset writes comes from here."""

    root: Path
    raw_dir: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None, raw_dir: str | os.PathLike | None = None) -> Lake:
        """Resolve the lake from arguments, then ``MUSICML_LAKE`` / ``MUSICML_RAW_DIR``."""
        root_p = Path(root or os.environ.get("MUSICML_LAKE", "data_lake")).resolve()
        raw = raw_dir or os.environ.get("MUSICML_RAW_DIR") or root_p / "raw"
        return cls(root=root_p, raw_dir=Path(raw).resolve())

    def path(self, *parts: str) -> Path:
        """A path inside the lake; raises :class:`PathEscapeError` if it would leave it."""
        return safe_join(self.root, *parts)

    def dir(self, *parts: str) -> Path:
        """Like :meth:`path`, creating the folder."""
        p = self.path(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def mlflow_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"


def safe_join(root: Path, *parts: str) -> Path:
    """Join ``parts`` under ``root``, refusing absolute parts, ``..`` escapes and symlink escapes."""
    root = Path(root).resolve()
    for part in parts:
        if Path(part).is_absolute():
            raise PathEscapeError(f"absolute path {part!r} not allowed inside the lake {root}")
    candidate = root.joinpath(*parts).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathEscapeError(f"path {'/'.join(parts)!r} escapes the lake {root}")
    return candidate


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(path: Path, table: pa.Table | Any, *, compression: str = "zstd") -> None:
    """Write a pyarrow table (or polars DataFrame) atomically and deterministically."""
    if not isinstance(table, pa.Table):
        table = table.to_arrow()
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=compression, write_statistics=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
