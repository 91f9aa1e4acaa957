"""The data lake: where every asset writes, atomic writes, and paths that cannot escape it.

Layout under the lake root (``MUSICML_LAKE``, default ``data_lake``)::

    raw/                 drop zone (``MUSICML_RAW_DIR`` overrides)
    ingest/files.parquet one row per raw file; ingest/cache/v<N>/ parse cache (batches)
    parsed/              pieces/, notes/ (the pieces and note tables: parquet parts, manifest.json)
    curated/             deduped.parquet, duplicates.parquet, augmented.parquet, splits.parquet
    tokenizer/           tokenizer.json, token_bytes.npy
    shards/              <split>/shard_00000.parquet, manifest.json
    models/<run>/        checkpoints, evaluation.json, samples/
    models/cli/<run>/    runs of ``python -m musicml.train`` on this lake
    catalog.duckdb       DuckDB views over the parquet above
    mlflow.db            MLflow tracking store (sqlite)

The root may also be an fsspec URL (``s3://bucket/lake``): the lake then lives on object storage
and each process works on a local copy of it (``.sync/`` holds its sync state), pulled before a
run and pushed after (:mod:`musicml.lake_sync`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from musicml import env


class PathEscapeError(ValueError):
    """A path derived from input data would land outside the lake."""


@dataclass(frozen=True)
class Lake:
    """Paths of one lake. Every path an asset writes comes from here."""

    root: Path
    raw_dir: Path
    remote: str | None = None  # the lake on object storage (an fsspec URL); ``root`` is then its local copy

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None, raw_dir: str | os.PathLike | None = None) -> Lake:
        """Resolve the lake from arguments, then ``MUSICML_LAKE`` / ``MUSICML_RAW_DIR`` (see :mod:`musicml.env`).

        The root may be a local path, a ``file://`` URL, or any other fsspec URL (``s3://``,
        ``gs://``, ``memory://``): a lake on object storage, worked on in a local copy under
        ``MUSICML_LAKE_CACHE`` that :meth:`pull` and :meth:`push` sync (:mod:`musicml.lake_sync`).
        The drop zone is a local folder (default: the lake's ``raw/``, synced with it)."""
        given = root or env.lake_root()
        remote = _remote(given)
        if remote is not None:
            root_p = (env.lake_cache() / cache_name(remote)).resolve()
        else:
            root_p = local_folder(given, "lake root").resolve()
        raw = raw_dir or env.raw_dir() or root_p / "raw"
        return cls(root=root_p, raw_dir=local_folder(raw, "drop zone").resolve(), remote=remote)

    def pull(self, prefixes: tuple[str, ...] | None = None) -> None:
        """Bring the local copy up to the lake on object storage (a no-op for a local lake)."""
        if self.remote is not None:
            from musicml import lake_sync

            lake_sync.pull(self.remote, self.root, prefixes)

    def push(self) -> None:
        """Send the local copy's changes to the lake on object storage (a no-op for a local lake)."""
        if self.remote is not None:
            from musicml import lake_sync

            lake_sync.push(self.remote, self.root)

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
        """``MLFLOW_TRACKING_URI``, else the lake's own sqlite store."""
        return env.tracking_uri() or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"


def cache_name(url: str) -> str:
    """The folder name of a remote lake's local copy: readable, one per URL, never a path."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", url.rstrip("/"))[:80].strip("._") or "lake"
    return f"{readable}-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:10]}"


def _is_url(path: object) -> bool:
    return isinstance(path, str) and "://" in path


def local_folder(path: str | os.PathLike, what: str = "path") -> Path:
    """``path`` (a plain path or ``file://`` URL) as a local path; ValueError for other protocols."""
    if not _is_url(path):
        return Path(path)
    from musicml import storage

    local = storage.local_path(path)
    if local is None:
        raise ValueError(
            f"{what} {path!r}: must be a local or mounted folder (or a file:// URL). A lake root may "
            "be any fsspec URL (MUSICML_LAKE=s3://...: worked on in a synced local copy, its drop "
            "zone the lake's raw/), and so may MLflow artifacts (MUSICML_ARTIFACTS).")
    return local


def _remote(path: str | os.PathLike) -> str | None:
    """``path`` when it is a non-local fsspec URL (handled by :mod:`musicml.storage`), else None."""
    if _is_url(path):
        from musicml import storage

        if storage.local_path(path) is None:
            return str(path)
    return None


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


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (process id and a random part: two writers never
    collide), keeping ``path``'s suffix for writers that add or check one (``np.save``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` (not created: the writer creates it, with the
    usual permissions); rename it over ``path`` only on success, remove it on any failure.

    The one atomic-write helper of musicml: every file written for reading back goes through it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path | str, data: bytes) -> None:
    """Write atomically. ``path`` may be an fsspec URL (``file://``, ``memory://``, ``s3://``):
    a local one goes through :func:`atomic_path`, another is put as one object."""
    if remote := _remote(path):
        from musicml import storage

        storage.write_bytes(remote, data)
        return
    with atomic_path(local_folder(path)) as tmp:
        tmp.write_bytes(data)


def read_bytes(path: Path | str) -> bytes:
    """The file's bytes; ``path`` may be an fsspec URL."""
    if remote := _remote(path):
        from musicml import storage

        return storage.read_bytes(remote)
    return local_folder(path).read_bytes()


def write_text(path: Path | str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path | str) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))


def write_parquet(path: Path | str, table: pa.Table | Any, *, compression: str = "zstd", **options: Any) -> None:
    """Write a pyarrow table (or polars DataFrame) atomically and deterministically; ``path``
    may be an fsspec URL (written in memory, then put as one object). ``options`` go to
    ``pyarrow.parquet.write_table`` (encodings, ``store_schema=False`` so a dictionary-encoded
    column reads back as its values' type ...)."""
    if not isinstance(table, pa.Table):
        table = table.to_arrow()
    options = {"compression": compression, "write_statistics": True, **options}
    if _remote(path):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)
        write_bytes(path, sink.getvalue().to_pybytes())
        return
    with atomic_path(local_folder(path)) as tmp:
        pq.write_table(table, tmp, **options)


def read_frame(path: Path | str, columns: list[str] | None = None) -> Any:
    """A local parquet file as a polars DataFrame, read through one open file: polars reading by
    path opens it more than once, so a file atomically replaced in between (another run writing
    it) reads as corrupt or panics; one handle always sees one whole file."""
    import polars as pl

    with open(local_folder(path), "rb") as f:
        return pl.read_parquet(f, columns=columns)


def read_parquet(path: Path | str) -> pa.Table:
    """A parquet file as a pyarrow table; ``path`` may be an fsspec URL."""
    if _remote(path):
        return pq.read_table(pa.BufferReader(read_bytes(path)))
    return pq.read_table(local_folder(path))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
