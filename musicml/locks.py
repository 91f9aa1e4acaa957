"""Inter-process locks on files in the lake (``fcntl.flock``): two runs on one lake take turns.

Used where two materializations (two users, or a sensor and a person, each with their own
Dagster home) may touch the same lake at once: ingestion, training, and creating the MLflow
store.
The lock is released when the holder exits or dies, so a killed run never leaves it held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: str | os.PathLike, waiting: Callable[[], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block; blocks until free.

    ``waiting`` is called once, before blocking, when another process holds the lock (to say so
    in a log)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
