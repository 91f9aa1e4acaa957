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
import threading
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from musicml import shards, tracking, workflow
from musicml.lake import Lake, read_frame, read_json, write_parquet
from pipelines import pools
from pipelines.recovery import reclaim_dead_runs

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"model": {"n_layer": 1, "n_embd": 32, "n_head": 2}, "seq_len": 64, "device_batch_size": 4,
         "max_steps": 100000, "eval_every": 0, "eval_tokens": 512, "checkpoint_every": 5, "keep_last": 2,
         "device": "cpu", "window_docs": 32, "launcher": "subprocess"}
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:mlflow")]


def tiny_lake(root: Path, docs: int = 40) -> Lake:
    """Synthetic ABC tunes through the tokenizer and shard steps (the inputs of ``trained_model``)."""
    lake = Lake(root=root, raw_dir=root / "raw")
    rng = np.random.default_rng(0)
    texts = [f"X:{i}\nK:C\n|" + " ".join("".join(rng.choice(list("CDEFGABcdefg"), 4)) for _ in range(12)) + "|\n"
             for i in range(docs)]
    n = len(texts)
    aug = pl.DataFrame({"aug_id": [f"a{i:03d}" for i in range(n)], "piece_id": [f"p{i:03d}" for i in range(n)],
                        "work_id": [f"w{i:03d}" for i in range(n)], "format": ["abc"] * n,
                        "shift": [0] * n, "text": texts, "text_bytes": [len(t) for t in texts]},
                       schema_overrides={"shift": pl.Int8})
    write_parquet(lake.path("curated", "augmented.parquet"), aug)
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"row_id": aug["aug_id"], "kind": ["augmented"] * n,
                                "split": ["train"] * (n - 8) + ["valid"] * 4 + ["test"] * 4}))
    workflow.tokenizer_step(lake, kind="char")
    workflow.shards_step(lake)
    return lake


def materialize(env: dict, config: dict, tmp: Path, asset: str = "trained_model") -> subprocess.Popen:
    """``dagster asset materialize`` of ``asset`` with ``config``, in its own process group."""
    cfg = tmp / f"run_{time.monotonic_ns()}.json"  # JSON is YAML
    cfg.write_text(json.dumps({"ops": {asset: {"config": config}}}))
    return subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
                             "pipelines.definitions", "--select", asset, "-c", str(cfg)],
                            cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def instance_env(tmp_path: Path, lake: Lake) -> tuple[Path, dict]:
    """A Dagster home (the repo's dagster.yaml, the gpu pool set to 1) and the CLI's environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        pools.apply_pool_limits(inst)
    env = {**os.environ, "DAGSTER_HOME": str(home), "MUSICML_LAKE": str(lake.root), "PYTHONPATH": str(REPO)}
    env.pop("MUSICML_RAW_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return home, env


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 240, group: bool = True) -> None:
    """SIGKILL ``proc`` (with ``group``, its whole process group) as soon as ``ready()`` holds,
    which it must while ``proc`` runs."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before {what}:\n" + proc.stdout.read()[-3000:]
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)
    (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


class Watcher(threading.Thread):
    """Reads ``check()`` in a loop while a run is killed and rerun; keeps what it saw and every error."""

    def __init__(self, check):
        super().__init__(daemon=True)
        self.check, self.seen, self.errors, self.stop = check, set(), [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen.add(self.check())
            except Exception as e:  # noqa: BLE001 - every failure of a reader is the finding
                self.errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self.join()


def test_training_killed_then_rerun_resumes_in_the_same_mlflow_run(tmp_path):
    lake = tiny_lake(tmp_path / "lake")
    home, env = instance_env(tmp_path, lake)

    first = materialize(env, TRAIN, tmp_path)
    kill_when(first, lambda: list(lake.root.glob("models/*/checkpoints/step_*.pt")), "a checkpoint",
              group=False)  # the CLI alone: its Pipes trainer dies with it (musicml/lifeline.py)
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


def reclaim(home: Path) -> list:
    with dg.DagsterInstance.from_config(str(home)) as inst:
        return reclaim_dead_runs(inst)


def test_ingestion_killed_then_rerun_accounts_for_every_file_once(tmp_path):
    from musicml.ingest.corpus import music21_abc_files
    from musicml.ingest.scan import scan

    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    sources = music21_abc_files()
    for f in sources[:20]:
        shutil.copy(f, lake.raw_dir / f.name)
    workflow.ingest_step(lake, seed_default_corpus=False)
    files = lake.path("ingest", "files.parquet")
    cache = lake.path("ingest", "cache")
    batches_before = len(list(cache.rglob("*.pieces.parquet")))
    for f in sources[20:]:
        shutil.copy(f, lake.raw_dir / f.name)
    home, env = instance_env(tmp_path, lake)

    # a reader of files.parquet all along, as the project reads it (musicml.lake.read_frame: one
    # open file; polars reading by path opens it twice and can mix two versions of a replaced file)
    watcher = Watcher(lambda: read_frame(files).height)
    watcher.start()
    first = materialize(env, {"seed_default_corpus": False}, tmp_path, "raw_scores")
    kill_when(first, lambda: len(list(cache.rglob("*.pieces.parquet"))) > batches_before + 1,
              "a new batch of the parse cache")
    assert pl.read_parquet(files).height == 20  # the old table, whole
    assert len(reclaim(home)) == 1
    second = materialize(env, {"seed_default_corpus": False}, tmp_path, "raw_scores")
    out, _ = second.communicate(timeout=600)
    watcher.finish()
    assert second.returncode == 0, out[-4000:]

    table = pl.read_parquet(files)
    on_disk = sorted(e.rel for e in scan(lake.raw_dir))
    assert sorted(table["path"].to_list()) == on_disk  # every file once, none twice
    assert len(on_disk) == len(sources)
    assert watcher.errors == []  # never a half-written table
    assert watcher.seen == {20, len(sources)}  # the old table, then the new one


def test_shard_writing_killed_then_rerun_switches_whole_generations(tmp_path):
    lake = tiny_lake(tmp_path / "lake", docs=3000)
    shard_dir = lake.path("shards")
    old = shards.read_manifest(shard_dir)
    home, env = instance_env(tmp_path, lake)

    def listed_shards_exist() -> str:
        manifest = shards.read_manifest(shard_dir)
        missing = [e["file"] for v in manifest["splits"].values() for e in v["shards"]
                   if not (shard_dir / e["file"]).exists()]
        assert not missing, f"manifest {manifest['generation']} lists missing shards {missing[:3]}"
        return manifest["generation"]

    watcher = Watcher(listed_shards_exist)
    watcher.start()
    new_config = {"tokens_per_shard": 128, "seed": 7}  # another shuffle: another generation
    first = materialize(env, new_config, tmp_path, "token_shards")
    kill_when(first, lambda: len(list(shard_dir.glob(".gen-*/train/shard_*.parquet"))) >= 2,
              "shards of the new generation")
    assert shards.read_manifest(shard_dir)["generation"] == old["generation"]
    assert shards.verify(shard_dir) == []
    reclaim(home)
    second = materialize(env, new_config, tmp_path, "token_shards")
    out, _ = second.communicate(timeout=600)
    watcher.finish()
    assert second.returncode == 0, out[-4000:]

    new = shards.read_manifest(shard_dir)
    assert new["generation"] != old["generation"]
    assert shards.verify(shard_dir) == []
    assert not list(shard_dir.glob(".gen-*"))  # the killed writer's staging folder is gone
    assert watcher.errors == []
    assert watcher.seen == {old["generation"], new["generation"]}
