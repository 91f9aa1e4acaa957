"""Sensors and schedules: retrain when new scores arrive, or on a clock."""

from __future__ import annotations

import hashlib

import dagster as dg

from musicml.automation import RetrainConfig, current_works, new_works
from musicml.ingest import DropZoneChanges, drop_zone_changes, files_table_path
from musicml.lake import Lake, read_frame
from pipelines.jobs import main_job, train_job
from pipelines.resources import LakeResource, MlflowResource

MAX_REQUEST_PATHS = RetrainConfig.max_request_paths  # more changes: a request without paths (a whole rescan)


def pending_changes(lake: Lake) -> DropZoneChanges:
    """The drop zone against the lake's files table (``musicml.ingest.drop_zone_changes``); a lake
    on object storage first pulls both."""
    lake.pull(("raw", "ingest/files.parquet"))
    table = files_table_path(lake)
    return drop_zone_changes(lake.raw_dir, read_frame(table) if table.exists() else None)


def run_key(changes: DropZoneChanges) -> str:
    return f"drop-{changes.key}"


def ingestion_request(changes: DropZoneChanges) -> dg.RunRequest:
    """A run of the graph whose ``raw_scores`` re-examines exactly the changed paths; run key
    and tags from the changes."""
    config = {"paths": list(changes.paths)} if len(changes.paths) <= MAX_REQUEST_PATHS else {}
    counts = changes.counts()
    return dg.RunRequest(
        run_key=run_key(changes),
        run_config={"ops": {"raw_scores": {"config": config}}},
        tags={"musicml/files": str(changes.entries), "musicml/changes": str(sum(counts.values())),
              **{f"musicml/{k}": str(v) for k, v in counts.items()}},
    )


@dg.sensor(job=main_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_scores_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """Materialize the graph when files are added to, changed in or removed from the drop zone
    of the configured ``lake`` resource: the request names exactly those files (``raw_scores``
    ``paths``), found by comparing the listing (path, size, mtime) with the files table."""
    changes = pending_changes(lake.lake())
    if changes.entries == 0:
        return dg.SkipReason(f"drop zone {lake.lake().raw_dir} is empty")
    what = ", ".join(f"{v} {k}" for k, v in changes.counts().items())
    if not changes.key:
        return dg.SkipReason(f"no change in {changes.entries} files")
    if run_key(changes) == context.cursor:
        return dg.SkipReason(f"no change in {changes.entries} files since the last request ({what}, not yet ingested)")
    context.log.info(f"drop zone: {what} of {changes.entries} entries")
    return dg.SensorResult(run_requests=[ingestion_request(changes)], cursor=run_key(changes))


nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain", job=main_job, cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Rebuild data and retrain every night at 03:00 (off until switched on in the UI).",
)


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_reclaimer(context: dg.SensorEvaluationContext, lake: LakeResource,
                       mlflow: MlflowResource) -> dg.SkipReason:
    """Fail runs whose process died (SIGKILL), free their pool slots and mark their MLflow runs
    KILLED (:func:`pipelines.recovery.reclaim_dead_runs`): the daemon's run monitoring cannot
    see a dead worker of the default run launcher or of the CLI."""
    from pipelines.recovery import reclaim_dead_runs

    done = reclaim_dead_runs(context.instance, mlflow.uri(lake.lake()))
    for r in done:
        context.log.warning(f"reclaimed dead run {r.run_id} ({r.job_name}, pid {r.pid}); "
                            f"MLflow runs marked KILLED: {', '.join(r.mlflow_runs) or 'none'}")
    return dg.SkipReason(f"{len(done)} dead runs reclaimed" if done else "no dead runs")


def failure_report(context: dg.RunFailureSensorContext) -> str:
    """What failed in a run: job, run id, each failed step with its error, or the run's message."""
    run = context.dagster_run
    lines = [f"run {run.run_id} of {run.job_name} failed"]
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        while error is not None and error.cause is not None:  # the user's error, not Dagster's wrapper
            error = error.cause
        what = error.message.strip().splitlines()[-1] if error and error.message.strip() else event.message
        lines.append(f"  step {event.step_key}: {what}")
    if len(lines) == 1:
        lines.append(f"  {context.failure_event.message or 'no message'}")
    return "\n".join(lines)


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False)
def report_failed_runs(context: dg.RunFailureSensorContext) -> None:
    """Log what failed in every failed run of this code location (job, steps, errors)."""
    context.log.error(failure_report(context))


def build_new_works_sensor(min_new_works: int = RetrainConfig.min_new_works) -> dg.SensorDefinition:
    """A sensor that requests ``train_job`` once the curated data holds at least ``min_new_works``
    works that the latest training did not see (``musicml.automation.new_works``); one request
    per state of the data (its run key is the digest of the work ids)."""

    @dg.sensor(name="new_works_sensor", job=train_job, minimum_interval_seconds=300,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def new_works_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.RunRequest | dg.SkipReason:
        lk = lake.lake()
        new = new_works(lk)
        if len(new) < min_new_works:
            return dg.SkipReason(f"{len(new)} new works since the latest training (retrain at {min_new_works})")
        digest = hashlib.sha256("\n".join(current_works(lk)).encode()).hexdigest()[:16]
        return dg.RunRequest(run_key=f"works-{digest}", tags={"musicml/new_works": str(len(new))})

    return new_works_sensor


new_works_sensor = build_new_works_sensor()
