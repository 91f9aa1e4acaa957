"""SIGKILL in the middle of training, then run again on the same Dagster instance and lake.

The real CLI (``dagster asset materialize``) on a tiny lake built by the workflow's own steps,
with the ``gpu`` pool limited to 1 as ``.ci/setup`` sets it. The training is killed once its
first checkpoint is on disk; the dead run then holds the pool slot and stays STARTED. The rerun,
as ``.ci/main`` does it (``python -m pipelines.recovery`` first), is not blocked by the pool,
resumes from the checkpoint in the same MLflow run and completes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from musicml import tracking, workflow
from musicml.lake import Lake, read_json, write_parquet
from pipelines import pools

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"model": {"n_layer": 1, "n_embd": 32, "n_head": 2}, "seq_len": 64, "device_batch_size": 4,
         "max_steps": 100000, "eval_every": 0, "eval_tokens": 512, "checkpoint_every": 5, "keep_last": 2,
         "device": "cpu", "window_docs": 32, "launcher": "subprocess"}
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:mlflow")]


def tiny_lake(root: Path) -> Lake:
    """Synthetic ABC tunes through the tokenizer and shard steps (the inputs of ``trained_model``)."""
    lake = Lake(root=root, raw_dir=root / "raw")
    rng = np.random.default_rng(0)
    texts = [f"X:{i}\nK:C\n|" + " ".join("".join(rng.choice(list("CDEFGABcdefg"), 4)) for _ in range(12)) + "|\n"
             for i in range(40)]
    n = len(texts)
    aug = pl.DataFrame({"aug_id": [f"a{i:03d}" for i in range(n)], "piece_id": [f"p{i:03d}" for i in range(n)],
                        "work_id": [f"w{i:03d}" for i in range(n)], "format": ["abc"] * n,
                        "shift": [0] * n, "text": texts, "text_bytes": [len(t) for t in texts]},
                       schema_overrides={"shift": pl.Int8})
    write_parquet(lake.path("curated", "augmented.parquet"), aug)
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"row_id": aug["aug_id"], "kind": ["augmented"] * n,
                                "split": ["train"] * 32 + ["valid"] * 4 + ["test"] * 4}))
    workflow.tokenizer_step(lake, kind="char")
    workflow.shards_step(lake)
    return lake


def materialize(env: dict, config: dict, tmp: Path, **kw) -> subprocess.Popen:
    cfg = tmp / f"run_{time.monotonic_ns()}.json"  # JSON is YAML
    cfg.write_text(json.dumps({"ops": {"trained_model": {"config": config}}}))
    return subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
                             "pipelines.definitions", "--select", "trained_model", "-c", str(cfg)],
                            cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def test_training_killed_then_rerun_resumes_in_the_same_mlflow_run(tmp_path):
    lake = tiny_lake(tmp_path / "lake")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        pools.apply_pool_limits(inst)
    env = {**os.environ, "DAGSTER_HOME": str(home), "MUSICML_LAKE": str(lake.root), "PYTHONPATH": str(REPO)}
    env.pop("MUSICML_RAW_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)

    first = materialize(env, TRAIN, tmp_path)
    deadline = time.time() + 240
    while not list(lake.root.glob("models/*/checkpoints/step_*.pt")):
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    run_dir = next(lake.root.glob("models/*/run.json")).parent
    mlflow_run_id = read_json(run_dir / "run.json")["mlflow_run_id"]
    uri = lake.mlflow_uri

    with dg.DagsterInstance.from_config(str(home)) as inst:
        (dead,) = inst.get_run_records()
        assert dead.dagster_run.status == dg.DagsterRunStatus.STARTED  # the fault: left as if running
        assert inst.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots  # and holding the slot
    assert tracking.client(uri).get_run(mlflow_run_id).info.status == "RUNNING"

    reclaim = subprocess.run([sys.executable, "-m", "pipelines.recovery"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert reclaim.returncode == 0, reclaim.stderr
    assert f"reclaimed dead run {dead.dagster_run.run_id}" in reclaim.stdout
    assert f"MLflow runs KILLED: {mlflow_run_id}" in reclaim.stdout
    assert tracking.client(uri).get_run(mlflow_run_id).info.status == "KILLED"

    second = materialize(env, {**TRAIN, "time_budget_s": 3.0}, tmp_path)  # time budget: same run name
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-4000:]

    state = read_json(run_dir / "run.json")
    assert state["mlflow_run_id"] == mlflow_run_id
    resumed = state["result"]["resumed_from_step"]
    assert resumed and resumed >= TRAIN["checkpoint_every"]
    assert state["result"]["steps"] > resumed
    c = tracking.client(uri)
    assert c.get_run(mlflow_run_id).info.status == "FINISHED"
    steps = [m.step for m in c.get_metric_history(mlflow_run_id, "train_loss")]
    assert sorted(steps) == list(range(1, state["result"]["steps"] + 1))  # one unbroken curve, no repeats
    with dg.DagsterInstance.from_config(str(home)) as inst:
        statuses = {r.dagster_run.run_id: r.dagster_run.status for r in inst.get_run_records()}
        assert statuses.pop(dead.dagster_run.run_id) == dg.DagsterRunStatus.FAILURE
        assert list(statuses.values()) == [dg.DagsterRunStatus.SUCCESS]
        assert inst.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots == []
