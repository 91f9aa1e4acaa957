"""Reclaiming dead runs (pipelines/recovery.py) and the run-failure report (pipelines/sensors.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType

from musicml import tracking
from pipelines import pools
from pipelines.recovery import HOST_TAG, process_alive, reclaim_dead_runs
from pipelines.sensors import dead_run_reclaimer, failure_report, report_failed_runs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@dg.op
def noop() -> None:
    pass


@dg.job
def some_job():
    noop()


def started_run(instance: dg.DagsterInstance, pid: int, tags: dict | None = None, claim: bool = True) -> str:
    """A run left STARTED by the process ``pid``, holding the ``gpu`` slot (``claim``), as a SIGKILLed run leaves it."""
    run = instance.create_run_for_job(some_job, tags=tags or {})
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid),
        run_id=run.run_id)
    if claim:
        assert instance.event_log_storage.claim_concurrency_slot(pools.GPU, run.run_id, "trained_model").is_claimed
    return run.run_id


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        pools.apply_pool_limits(inst)
        yield inst


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        tracking.client(uri).search_experiments()
    return uri


def mlflow_run(uri: str, dagster_run_id: str) -> str:
    c = tracking.client(uri)
    return c.create_run(tracking.experiment_id(c), tags={"dagster.run_id": dagster_run_id}).info.run_id


def test_dead_run_is_failed_its_slot_freed_and_mlflow_run_killed(instance, mlflow_uri):
    dead = started_run(instance, dead_pid())
    ml_dead = mlflow_run(mlflow_uri, dead)
    assert instance.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots
    done = reclaim_dead_runs(instance, mlflow_uri)
    assert [r.run_id for r in done] == [dead]
    assert done[0].mlflow_runs == [ml_dead]
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots == []
    assert tracking.client(mlflow_uri).get_run(ml_dead).info.status == "KILLED"
    # a new run gets the slot
    assert instance.event_log_storage.claim_concurrency_slot(pools.GPU, "next-run", "trained_model").is_claimed
    assert reclaim_dead_runs(instance, mlflow_uri) == []  # nothing left to reclaim


def test_live_run_and_other_hosts_run_are_left_alone(instance, mlflow_uri):
    live = started_run(instance, os.getpid())
    elsewhere = started_run(instance, dead_pid(), tags={HOST_TAG: "some-other-host"}, claim=False)
    ml_live = mlflow_run(mlflow_uri, live)
    assert reclaim_dead_runs(instance, mlflow_uri) == []
    for run_id in (live, elsewhere):
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert tracking.client(mlflow_uri).get_run(ml_live).info.status == "RUNNING"
    assert len(instance.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots) == 1


def test_finished_mlflow_runs_are_not_touched(instance, mlflow_uri):
    dead = started_run(instance, dead_pid())
    finished = mlflow_run(mlflow_uri, dead)
    tracking.client(mlflow_uri).set_terminated(finished, "FINISHED")
    assert reclaim_dead_runs(instance, mlflow_uri)[0].mlflow_runs == []
    assert tracking.client(mlflow_uri).get_run(finished).info.status == "FINISHED"


def test_process_alive_sees_reused_pids_and_dead_ones():
    assert process_alive(os.getpid())
    assert process_alive(os.getpid(), since=time.time())
    assert not process_alive(os.getpid(), since=0.0)  # this process started after "since": a reused pid
    assert not process_alive(dead_pid())


def test_reclaimer_sensor_reports(instance, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from pipelines.resources import LakeResource, MlflowResource

    dead = started_run(instance, dead_pid())
    resources = {"lake": LakeResource(root=str(tmp_path)), "mlflow": MlflowResource()}
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = dead_run_reclaimer(ctx)
    assert result.skip_message == "1 dead runs reclaimed"
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE


@dg.op
def broken() -> None:
    raise ConnectionError("database is locked")


@dg.job
def failing_job():
    broken()


def test_run_failure_sensor_names_step_and_error(instance, caplog):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records[0]
    ctx = dg.build_run_status_sensor_context(
        sensor_name="report_failed_runs", dagster_instance=instance, dagster_run=run,
        dagster_event=failure.event_log_entry.dagster_event).for_run_failure()
    report = failure_report(ctx)
    assert f"run {run.run_id} of failing_job failed" in report
    assert "step broken: ConnectionError: database is locked" in report
    report_failed_runs(ctx)  # logs it, returns nothing
