"""Sensors and schedules: retrain when new scores arrive, or on a clock."""

from __future__ import annotations

import hashlib

import dagster as dg

from musicml.ingest import scan
from musicml.lake import Lake
from pipelines.jobs import main_job


def drop_zone_fingerprint(lake: Lake) -> tuple[str, int]:
    """A digest of the drop zone's listing (path, size, mtime) and its file count."""
    h = hashlib.sha256()
    files = scan(lake.raw_dir) if lake.raw_dir.exists() else []
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(lake.raw_dir).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest(), len(files)


@dg.sensor(job=main_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_scores_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Materialize the whole graph when files are added to, changed in or removed from the drop zone."""
    lake = Lake.from_env()
    digest, count = drop_zone_fingerprint(lake)
    if count == 0:
        return dg.SkipReason(f"drop zone {lake.raw_dir} is empty")
    if digest == context.cursor:
        return dg.SkipReason(f"no change in {count} files")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=digest, tags={"musicml/files": str(count)})],
                           cursor=digest)


nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain", job=main_job, cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Rebuild data and retrain every night at 03:00 (off until switched on in the UI).",
)
