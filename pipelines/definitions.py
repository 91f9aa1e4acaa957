"""The code location: every asset, check, job, sensor and schedule of musicml."""

from __future__ import annotations

import dagster as dg

from pipelines import checks
from pipelines.assets import buckets, curation, model, pianorolls, registry, tokens
from pipelines.jobs import data_job, ingest_buckets_job, main_job, train_job
from pipelines.resources import LakeResource, MlflowResource
from pipelines.sensors import (
    dead_run_reclaimer,
    new_scores_sensor,
    new_works_sensor,
    nightly_retrain,
    report_failed_runs,
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([buckets, curation, tokens, pianorolls, model, registry]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[main_job, data_job, train_job, ingest_buckets_job],
    sensors=[new_scores_sensor, new_works_sensor, dead_run_reclaimer, report_failed_runs],
    schedules=[nightly_retrain],
    resources={"lake": LakeResource(), "mlflow": MlflowResource()},
    executor=dg.in_process_executor,
)


def main_assets(definitions: dg.Definitions = defs) -> list[dg.AssetsDefinition]:
    """The unpartitioned assets: the graph ``main_job`` materializes (``dg.materialize`` of the
    whole graph in one run; the partitioned ``raw_score_buckets`` runs one bucket per run)."""
    return [a for a in definitions.assets if a.partitions_def is None]
