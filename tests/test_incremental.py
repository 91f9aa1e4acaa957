"""Retraining when enough new works have arrived (musicml/automation.py, new_works_sensor)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from musicml import automation
from musicml.lake import Lake, write_json, write_parquet
from pipelines.resources import LakeResource
from pipelines.sensors import build_new_works_sensor


def curate(lake: Lake, works: list[str]) -> None:
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"row_id": [f"r{i}" for i in range(len(works))], "work_id": works}))


def trained_on(lake: Lake, works: list[str]) -> None:
    """What train_step leaves: the run folder with its works, and models/latest.json."""
    run_dir = lake.path("models", "gpt-run")
    run_dir.mkdir(parents=True, exist_ok=True)
    curate(lake, works)
    automation.record_works(lake, run_dir)
    write_json(lake.path("models", "latest.json"), {"run_dir": str(run_dir)})


def evaluate(sensor: dg.SensorDefinition, lake: Lake):
    with dg.build_sensor_context(resources={"lake": LakeResource(root=str(lake.root))}) as ctx:
        return sensor(ctx)


def test_new_works_are_counted_against_the_latest_training(tmp_path):
    lake = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    assert automation.new_works(lake) == []  # nothing curated yet
    curate(lake, ["w1", "w2", "w2"])  # two rows of one work: one work
    assert automation.new_works(lake) == ["w1", "w2"]  # no training yet: every work is new
    trained_on(lake, ["w1", "w2"])
    assert automation.new_works(lake) == []
    curate(lake, ["w1", "w2", "w3", "w4"])
    assert automation.new_works(lake) == ["w3", "w4"]


def test_sensor_requests_training_at_the_threshold_once_per_data_state(tmp_path):
    lake = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    sensor = build_new_works_sensor(min_new_works=3)
    assert sensor.job_name == "train_job"
    trained_on(lake, ["w1", "w2"])
    curate(lake, ["w1", "w2", "w3", "w4"])
    skip = evaluate(sensor, lake)
    assert isinstance(skip, dg.SkipReason)
    assert skip.skip_message == "2 new works since the latest training (retrain at 3)"
    curate(lake, ["w1", "w2", "w3", "w4", "w5"])
    request = evaluate(sensor, lake)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["musicml/new_works"] == "3"
    assert evaluate(sensor, lake).run_key == request.run_key  # same data: same key, Dagster runs it once
    curate(lake, ["w1", "w2", "w3", "w4", "w5", "w6"])
    assert evaluate(sensor, lake).run_key != request.run_key


def test_default_threshold_is_the_library_setting():
    from pipelines.sensors import new_works_sensor

    assert automation.RetrainConfig().min_new_works == 20
    assert new_works_sensor.name == "new_works_sensor"
    assert new_works_sensor.default_status == dg.DefaultSensorStatus.STOPPED
