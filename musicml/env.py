"""Every environment variable musicml reads, in one place; other modules call these functions.

=====================  ==========================================  ================================
variable               what                                        default
=====================  ==========================================  ================================
``MUSICML_LAKE``       lake root                                   ``data_lake`` (relative to cwd)
``MUSICML_RAW_DIR``    drop zone                                   ``<lake>/raw``
``MUSICML_LAKE_CACHE`` local copies of lakes on object storage      ``~/.cache/musicml/lakes``
``MLFLOW_TRACKING_URI`` MLflow tracking store                      ``sqlite:///<lake>/mlflow.db``
``MUSICML_ARTIFACTS``  MLflow artifact root of new experiments      ``<lake>/mlartifacts``
``MUSICML_SOUNDFONT``  SoundFont for WAV rendering                 system paths, then none
``MUSICML_CORPORA``    the shared real corpora (tests, benchmarks)  ``../shared/corpora`` beside the checkout
``RANK`` ``LOCAL_RANK`` ``WORLD_SIZE``  set by torchrun               one process
=====================  ==========================================  ================================

Each function reads the environment when called (not at import), so tests can set variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

LAKE = "MUSICML_LAKE"
RAW_DIR = "MUSICML_RAW_DIR"
LAKE_CACHE = "MUSICML_LAKE_CACHE"
TRACKING_URI = "MLFLOW_TRACKING_URI"
ARTIFACTS = "MUSICML_ARTIFACTS"
SOUNDFONT = "MUSICML_SOUNDFONT"
CORPORA = "MUSICML_CORPORA"
DEFAULT_LAKE = "data_lake"


def _get(name: str) -> str | None:
    """The variable's value; unset and empty both mean None."""
    return os.environ.get(name) or None


def _path(value: str) -> Path | str:
    """A path, or the URL itself (``file:///x``: ``Path`` would fold its slashes)."""
    return value if "://" in value else Path(value)


def lake_root() -> Path | str:
    """``$MUSICML_LAKE`` or ``data_lake`` (not resolved; a ``file://`` URL stays a string)."""
    return _path(_get(LAKE) or DEFAULT_LAKE)


def raw_dir() -> Path | str | None:
    """``$MUSICML_RAW_DIR``; None means ``<lake>/raw``."""
    value = _get(RAW_DIR)
    return _path(value) if value else None


def lake_cache() -> Path:
    """``$MUSICML_LAKE_CACHE``, else ``~/.cache/musicml/lakes``: where the local copy of a lake on
    object storage lives (:mod:`musicml.lake_sync`); the same on every machine of one image, so
    the absolute paths a lake's records hold agree across them."""
    value = _get(LAKE_CACHE)
    return Path(value) if value else Path.home() / ".cache" / "musicml" / "lakes"


def tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI``; None means the lake's own ``sqlite:///<lake>/mlflow.db``."""
    return _get(TRACKING_URI)


def artifact_root() -> str | None:
    """``$MUSICML_ARTIFACTS`` (a URL: ``file://``, ``s3://``, any fsspec protocol); None means
    ``<lake>/mlartifacts`` (see :func:`musicml.tracking.artifact_location`)."""
    return _get(ARTIFACTS)


def soundfont() -> Path | None:
    """``$MUSICML_SOUNDFONT``; None when unset."""
    value = _get(SOUNDFONT)
    return Path(value) if value else None


def corpora_dir() -> Path:
    """``$MUSICML_CORPORA``, else ``shared/corpora`` beside the checkout holding this package."""
    value = _get(CORPORA)
    return Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / "corpora"


class Distributed(NamedTuple):
    rank: int
    local_rank: int
    world_size: int


def distributed() -> Distributed:
    """This process's place in a torchrun launch (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``)."""
    return Distributed(int(_get("RANK") or 0), int(_get("LOCAL_RANK") or 0), int(_get("WORLD_SIZE") or 1))
