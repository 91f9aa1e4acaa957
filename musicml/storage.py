"""fsspec URLs for the lake's read/write helpers and for MLflow artifacts (object storage as config).

- :func:`local_path`: a ``file://`` URL or a plain path as a local :class:`~pathlib.Path`;
  None for any other protocol (``memory://``, ``s3://``, ``gs://``...).
- :func:`write_bytes` / :func:`read_bytes` / :func:`open_url`: through the protocol's fsspec
  filesystem (an object store's put is whole-object, so readers never see a partial file).
- MLflow artifacts on fsspec filesystems: :mod:`musicml.fsspec_artifacts`.

:mod:`musicml.lake`'s helpers call these for URLs only (fsspec is imported on first use).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import IO

from fsspec.core import url_to_fs
from fsspec.utils import get_protocol

LOCAL_PROTOCOLS = ("file", "local")


def is_url(path: str | os.PathLike) -> bool:
    """``path`` is a string with an fsspec protocol (``scheme://``)."""
    return isinstance(path, str) and "://" in path


def local_path(path: str | os.PathLike) -> Path | None:
    """A plain path or ``file://`` URL as a local path; None for a non-local protocol."""
    if not is_url(path):
        return Path(path)
    if get_protocol(str(path)) in LOCAL_PROTOCOLS:
        return Path(url_to_fs(str(path))[1])
    return None


def open_url(url: str, mode: str = "rb") -> IO:
    """Open ``url`` through its fsspec filesystem (parent folders created for writing)."""
    fs, path = url_to_fs(url)
    if "w" in mode:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    return fs.open(path, mode)


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` as one object."""
    fs, path = url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    fs.pipe_file(path, data)


def read_bytes(url: str) -> bytes:
    fs, path = url_to_fs(url)
    return fs.cat_file(path)
