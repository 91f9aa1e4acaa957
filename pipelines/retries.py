"""Bounded retries of a step on transient errors only (``musicml.transient``): a busy SQLite or
DuckDB file, a dropped database or tracking-server connection. Any other error fails the step
at once (retrying a bug or bad data would only repeat it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from musicml.transient import RetrySettings, is_transient

RETRIES = RetrySettings()


@contextmanager
def retry_transient(context: dg.AssetExecutionContext, settings: RetrySettings = RETRIES) -> Iterator[None]:
    """Turn a transient error raised inside into ``dg.RetryRequested`` (Dagster re-runs the step
    after ``settings.delay(attempt)`` seconds), at most ``settings.max_retries`` times."""
    try:
        yield
    except Exception as exc:
        attempt = context.retry_number
        if not is_transient(exc) or attempt >= settings.max_retries:
            raise
        wait = settings.delay(attempt)
        context.log.warning(f"transient error, retry {attempt + 1} of {settings.max_retries} in {wait:g} s: "
                            f"{type(exc).__name__}: {exc}")
        raise dg.RetryRequested(max_retries=settings.max_retries, seconds_to_wait=wait) from exc
