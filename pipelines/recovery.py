"""Reclaim what dead runs hold: a run whose process was killed (SIGKILL, OOM, power cut) stays
STARTED in Dagster, keeps its claim on a pool slot (``gpu``: every later training blocks with
"Step blocked by limit for pool gpu") and counts against ``max_concurrent_runs``; its MLflow run
stays RUNNING.

Dagster's run monitoring (the daemon) cannot see this with the default run launcher: that
launcher has no worker health check (``supports_check_run_worker_health`` is False), and runs
of ``dagster job execute`` / ``dagster asset materialize`` have no launcher at all. So
:func:`reclaim_dead_runs` looks at the process itself: the pid that Dagster records on every
event of a run (the run worker's), on this host. A run in progress whose process is gone (or is
a zombie, or the pid now belongs to a process started after the run) is marked failed, its
concurrency slots are freed, and the MLflow runs tagged ``dagster.run_id=<run>`` still RUNNING
are marked KILLED (its training resumes from the last checkpoint on the next run: same MLflow
run). Called by ``.ci/main`` before materializing (``python -m pipelines.recovery``), and in the
daemon by :data:`pipelines.sensors.dead_run_reclaimer`.

One machine per Dagster instance is assumed (the SQLite default). On an instance shared by
several machines, a run tagged ``musicml/host`` is judged only on that host.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType, JobFailureData, RunFailureReason

HOST_TAG = "musicml/host"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
log = logging.getLogger(__name__)


@dataclass
class Reclaimed:
    """A dead run that was reclaimed: its Dagster id, its pid and the MLflow runs marked KILLED."""

    run_id: str
    job_name: str
    pid: int
    mlflow_runs: list[str] = field(default_factory=list)


def _process_start(pid: int) -> float | None:
    """Start time (epoch seconds) of ``pid`` from ``/proc`` (Linux); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime 22
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether ``pid`` runs on this host (not a zombie) and, given ``since`` (epoch seconds, when
    the run recorded it), is still the process that started before then (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except OSError:
        pass
    start = _process_start(pid) if since is not None else None
    return not (start is not None and since is not None and start > since + 2.0)


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that started ``run_id`` and when it said so: from the run's
    RUN_START event, else its first event that carries a pid."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not records:
        records = instance.get_records_for_run(run_id, limit=20).records
    for record in records:
        event = record.event_log_entry
        if event.dagster_event is not None and event.dagster_event.pid is not None:
            return event.dagster_event.pid, event.timestamp
    return None


def kill_mlflow_runs(tracking_uri: str, dagster_run_id: str) -> list[str]:
    """Mark KILLED every MLflow run tagged ``dagster.run_id=<dagster_run_id>`` that is still RUNNING."""
    from musicml import tracking

    c = tracking.client(tracking_uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments:
        return []
    runs = c.search_runs(experiments, filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' "
                                                    "and attributes.status = 'RUNNING'")
    for run in runs:
        c.set_terminated(run.info.run_id, status="KILLED")
    return [r.info.run_id for r in runs]


def reclaim_dead_runs(instance: dg.DagsterInstance, tracking_uri: str | None = None) -> list[Reclaimed]:
    """Fail every run in progress on this host whose process is dead, free its concurrency slots
    and mark its RUNNING MLflow runs (in ``tracking_uri``; None: none touched) KILLED."""
    host = socket.gethostname()
    done = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        if run.tags.get(HOST_TAG, host) != host:
            continue
        found = run_worker_pid(instance, run.run_id)
        if found is None or process_alive(*found):
            continue
        pid = found[0]
        instance.report_run_failed(
            run, f"run worker (pid {pid} on {host}) is gone: marked failed by pipelines.recovery",
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        killed = kill_mlflow_runs(tracking_uri, run.run_id) if tracking_uri else []
        log.warning("reclaimed dead run %s (%s, pid %s); MLflow runs marked KILLED: %s",
                    run.run_id, run.job_name, pid, killed or "none")
        done.append(Reclaimed(run.run_id, run.job_name, pid, killed))
    return done


def main() -> None:
    """``python -m pipelines.recovery``: reclaim dead runs of ``$DAGSTER_HOME``'s instance, with the
    lake's MLflow store (``$MLFLOW_TRACKING_URI``, else ``<$MUSICML_LAKE>/mlflow.db``)."""
    from pipelines.resources import LakeResource, MlflowResource

    lake = LakeResource().lake()
    uri = MlflowResource().uri(lake)
    start = time.time()
    with dg.DagsterInstance.get() as instance:
        done = reclaim_dead_runs(instance, uri if (not uri.startswith("sqlite:///")
                                                  or Path(uri[len("sqlite:///"):]).exists()) else None)
    for r in done:
        print(f"reclaimed dead run {r.run_id} ({r.job_name}, pid {r.pid}); MLflow runs KILLED: "
              f"{', '.join(r.mlflow_runs) or 'none'}")
    print(f"{len(done)} dead runs reclaimed in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
