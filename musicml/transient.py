"""Transient errors (a busy database, a dropped connection) and the bounded retry policy for them.

A transient error is worth retrying unchanged; any other error (a bug, bad data) is not, so the
Dagster assets retry only these (``pipelines/retries.py``): at most ``max_retries`` times, waiting
``delay_s * backoff ** attempt`` seconds (capped at ``max_delay_s``) before each attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# lower-case fragments of the messages of transient errors, from SQLite (MLflow's default store,
# Dagster's storage), DuckDB (the catalog), PostgreSQL / SQLAlchemy and HTTP tracking servers
TRANSIENT_MARKERS = (
    "database is locked", "database table is locked", "could not set lock on file",
    "connection refused", "connection reset", "server closed the connection", "too many connections",
    "could not connect to server", "temporarily unavailable", "timed out", "503 service unavailable",
    "too many requests",
)


@dataclass(frozen=True)
class RetrySettings:
    max_retries: int = 3  # retries of a step after a transient error (0: none)
    delay_s: float = 2.0  # wait before the first retry
    backoff: float = 2.0  # each further retry waits this many times longer
    max_delay_s: float = 60.0  # cap of one wait

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        return min(self.delay_s * self.backoff ** max(attempt, 0), self.max_delay_s)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a busy store or a dropped connection."""
    for e in _chain(exc):
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        text = str(e).lower()
        if any(marker in text for marker in TRANSIENT_MARKERS):
            return True
    return False
