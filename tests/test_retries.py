"""Bounded retries on transient errors only (musicml/transient.py, pipelines/retries.py)."""

from __future__ import annotations

import sqlite3

import dagster as dg
import pytest

from musicml.transient import RetrySettings, is_transient
from pipelines.retries import retry_transient

FAST = RetrySettings(max_retries=2, delay_s=0.0)


def test_transient_errors_are_told_from_bugs():
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(TimeoutError())
    try:  # raised from a busy store, wrapped by the caller
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as e:
            raise RuntimeError("could not log metrics") from e
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("split test holds no tokens"))
    assert not is_transient(sqlite3.OperationalError("no such table: runs"))
    assert not is_transient(FileNotFoundError("shards/manifest.json"))


def test_backoff_is_exponential_and_capped():
    s = RetrySettings(delay_s=2.0, backoff=2.0, max_delay_s=10.0)
    assert [s.delay(i) for i in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def run_flaky(errors: list[BaseException]) -> tuple[dg.ExecuteInProcessResult, list[int]]:
    """Materialize an asset that raises ``errors`` in turn, then succeeds; the attempts it saw."""
    attempts: list[int] = []

    @dg.asset
    def flaky(context) -> int:  # (a string annotation in a nested function is refused by Dagster)
        attempts.append(context.retry_number)
        with retry_transient(context, FAST):
            if len(attempts) <= len(errors):
                raise errors[len(attempts) - 1]
        return len(attempts)

    with dg.instance_for_test() as instance:
        return dg.materialize([flaky], instance=instance, raise_on_error=False), attempts


def test_a_transient_error_is_retried_until_it_clears():
    result, attempts = run_flaky([sqlite3.OperationalError("database is locked"), ConnectionResetError()])
    assert result.success
    assert attempts == [0, 1, 2]


def test_retries_are_bounded():
    result, attempts = run_flaky([sqlite3.OperationalError("database is locked")] * 5)
    assert not result.success
    assert attempts == [0, 1, 2]  # the first try and FAST.max_retries retries
    (failure,) = result.get_step_failure_events()
    assert "database is locked" in str(failure.step_failure_data.error.to_string())


@pytest.mark.parametrize("error", [ValueError("bad data"), KeyError("aug_id")])
def test_other_errors_fail_at_once(error):
    result, attempts = run_flaky([error])
    assert not result.success
    assert attempts == [0]
