"""Two whole-graph materializations at once on one fresh lake, as two users (or a sensor and a
person) would start them: each ``dagster job execute -j main_job`` in its own process with its own
``DAGSTER_HOME``, both on the same lake root and so the same MLflow store (``<lake>/mlflow.db``).

Neither may fail on the other: the MLflow store is created once under a lock
(:func:`musicml.tracking.client`), ingestion takes turns under a lock, shards switch generations
atomically. Both runs succeed, every file of the drop zone has exactly one row, and MLflow holds
each run's training with its metrics: one MLflow run, since same data and config are
one run (the second training waits for the first, then resumes its finished run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from test_pipeline import TINY_RUN, build_drop_zone

from musicml import tracking
from musicml.lake import Lake
from pipelines import pools

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
TRAIN_STEPS = TINY_RUN["ops"]["trained_model"]["config"]["max_steps"]
# two main jobs on two cores: 54 s alone, 110 s beside other work (2026-12-02)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:mlflow")]


def instance_home(folder: Path) -> Path:
    """A fresh Dagster home: the repository's dagster.yaml, the ``gpu`` pool limited as .ci/setup does."""
    folder.mkdir()
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(folder)) as inst:
        pools.apply_pool_limits(inst)
    return folder


def start_main_job(home: Path, lake: Lake, config: Path, log: Path) -> subprocess.Popen:
    """``dagster job execute -j main_job`` (what .ci/main runs) on ``lake``, recorded in ``home``."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "MUSICML_LAKE": str(lake.root), "PYTHONPATH": str(REPO)}
    env.pop("MUSICML_RAW_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as out:
        return subprocess.Popen([str(DAGSTER), "job", "execute", "-m", "pipelines.definitions", "-j", "main_job",
                                 "-c", str(config)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_two_whole_graph_runs_at_once_on_one_fresh_lake_both_succeed(tmp_path, derived):
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    expected = build_drop_zone(lake.raw_dir, derived)
    assert not (lake.root / "mlflow.db").exists()  # fresh: the first runs to reach MLflow create it
    config = tmp_path / "run.json"  # JSON is YAML
    config.write_text(json.dumps(TINY_RUN))
    homes = [instance_home(tmp_path / f"dagster_home_{i}") for i in range(2)]
    logs = [tmp_path / f"run_{i}.log" for i in range(2)]
    started = time.monotonic()
    procs = [start_main_job(home, lake, config, log) for home, log in zip(homes, logs)]
    try:
        for proc in procs:
            proc.wait(timeout=900)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    elapsed = time.monotonic() - started
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, f"{log.name} exited {proc.returncode}:\n{log.read_text()[-6000:]}"

    trained = []  # (Dagster run id, trained_model's metadata) of each instance
    for home in homes:
        with dg.DagsterInstance.from_config(str(home)) as inst:
            (record,) = inst.get_run_records()
            assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
            event = inst.get_latest_materialization_event(dg.AssetKey("trained_model"))
            assert event is not None and event.run_id == record.dagster_run.run_id
            trained.append((event.run_id, event.asset_materialization.metadata))

    files = pl.read_parquet(lake.path("ingest", "files.parquet"))
    assert sorted(files["path"].to_list()) == sorted(expected)  # every file exactly once
    assert dict(files.select("path", "status").iter_rows()) == expected

    # one training: same data and config are one run (resumable); the second run took its turn
    # after the first and resumed it, finished, instead of training beside it in the same folder
    c = tracking.client(lake.mlflow_uri)
    exp = c.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    for inst_run_id, metadata in trained:
        run = c.get_run(metadata["mlflow_run_id"].value)
        assert run.info.status == "FINISHED" and run.info.experiment_id == exp.experiment_id
        steps = sorted(m.step for m in c.get_metric_history(run.info.run_id, "train_loss"))
        assert steps == list(range(1, TRAIN_STEPS + 1)), (inst_run_id, steps)  # one curve, no step twice
        assert {"val_bpb", "test_bpb", "val_bpb_estimate"} <= set(run.data.metrics), sorted(run.data.metrics)
        assert any(k.startswith("system/") for k in run.data.metrics), sorted(run.data.metrics)
    names = {c.get_run(m["mlflow_run_id"].value).info.run_name for _, m in trained}
    assert len(names) == 1
    same_name = c.search_runs([exp.experiment_id], f"attributes.run_name = '{names.pop()}'")
    assert len(same_name) == 1, [r.info.run_id for r in same_name]  # not one MLflow run per process
    resumed = [m["resumed_from_step"].value for _, m in trained if "resumed_from_step" in m]
    assert resumed == [TRAIN_STEPS]  # the second found the first's last checkpoint: nothing left to train
    print(json.dumps({"elapsed_s": round(elapsed, 1)}))
