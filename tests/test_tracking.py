"""MLflow tracking on a local sqlite store: runs, buffered metrics, params, dataset inputs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking._tracking_service import utils as _tracking_utils

from musicml import tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One sqlite store for the module (creating its tables is slow); cwd moved off the repo."""
    root = tmp_path_factory.mktemp("mlflow")
    work = root / "cwd"
    work.mkdir()
    old_cwd, old_uri, old_env = Path.cwd(), _tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(work)  # MLflow's default artifact root is ./mlruns: keep it out of the repo
    uri = f"sqlite:///{root / 'mlflow.db'}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracking.experiment_id(tracking.client(uri))  # create the tables once
        yield uri, root, work
    finally:
        os.chdir(old_cwd)
        mlflow.set_tracking_uri(old_uri)
        if old_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


def _run(store, name: str, **tags: str) -> str:
    uri = store[0]
    return tracking.start_or_resume_run(uri, run_id=None, run_name=name, tags={"suite": "test", **tags})


def _manifest() -> dict:
    return {
        "splits": {
            "train": {"shards": [{"file": "train/shard_00000.parquet", "rows": 3, "tokens": 30, "sha256": "a" * 64},
                                 {"file": "train/shard_00001.parquet", "rows": 2, "tokens": 20, "sha256": "b" * 64}],
                      "rows": 5, "tokens": 50},
            "valid": {"shards": [{"file": "valid/shard_00000.parquet", "rows": 1, "tokens": 9, "sha256": "c" * 64}],
                      "rows": 1, "tokens": 9},
        },
        "digest": "0123456789abcdef" + "f" * 48,
    }


def test_start_then_resume_same_run(store) -> None:
    uri = store[0]
    run_id = tracking.start_or_resume_run(uri, run_id=None, run_name="gpt-d4", tags={"dagster.run_id": "r1"})
    c = tracking.client(uri)
    run = c.get_run(run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == "gpt-d4"
    assert run.data.tags["dagster.run_id"] == "r1"
    assert c.get_experiment(run.info.experiment_id).name == tracking.DEFAULT_EXPERIMENT
    tracking.end_run(uri, run_id, status="FAILED")
    assert c.get_run(run_id).info.status == "FAILED"
    resumed = tracking.start_or_resume_run(uri, run_id=run_id, run_name="ignored", tags={"dagster.run_id": "r2"})
    assert resumed == run_id
    run = c.get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.tags["dagster.run_id"] == "r2"
    tracking.end_run(uri, run_id)
    assert c.get_run(run_id).info.status == "FINISHED"


def test_unknown_run_id_creates_a_new_run(store) -> None:
    uri = store[0]
    new = tracking.start_or_resume_run(uri, run_id="0" * 32, run_name="fresh", tags={})
    assert new != "0" * 32
    assert tracking.client(uri).get_run(new).info.run_name == "fresh"


def test_experiment_by_name(store) -> None:
    uri = store[0]
    run_id = tracking.start_or_resume_run(uri, run_id=None, run_name="x", tags={}, experiment="other-exp")
    c = tracking.client(uri)
    exp_id = c.get_run(run_id).info.experiment_id
    assert c.get_experiment(exp_id).name == "other-exp"
    assert tracking.experiment_id(c, "other-exp") == exp_id  # found, not created twice


def test_metrics_logger_buffers_and_flushes(store) -> None:
    uri = store[0]
    run_id = _run(store, "metrics")
    c = tracking.client(uri)
    logger = tracking.MetricsLogger(uri, run_id, flush_every=10)
    for step in range(3):
        logger(step, {"loss": 1.0 / (step + 1), "lr": 0.01, "skipped": None})
    assert len(logger._buffer) == 6
    assert c.get_metric_history(run_id, "loss") == []  # nothing written yet
    for step in range(3, 12):
        logger(step, {"loss": 1.0 / (step + 1), "lr": 0.01})
    assert len(c.get_metric_history(run_id, "loss")) >= 5  # auto-flushed at least once
    assert len(logger._buffer) < 10
    logger.flush()
    assert logger._buffer == []
    history = sorted(c.get_metric_history(run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(12))
    assert [m.value for m in history] == pytest.approx([1.0 / (s + 1) for s in range(12)])
    assert len(c.get_metric_history(run_id, "lr")) == 12
    assert c.get_metric_history(run_id, "skipped") == []
    logger.flush()  # flushing an empty buffer is harmless


def test_metrics_logger_large_flush_batches(store) -> None:
    uri = store[0]
    run_id = _run(store, "many-metrics")
    logger = tracking.MetricsLogger(uri, run_id, flush_every=10_000)
    for step in range(1000):
        logger(step, {"a": float(step), "b": float(-step)})
    logger.flush()  # 2000 metrics: more than one MLflow batch
    c = tracking.client(uri)
    assert len(c.get_metric_history(run_id, "a")) == 1000
    assert len(c.get_metric_history(run_id, "b")) == 1000


def test_log_metrics_one_shot(store) -> None:
    uri = store[0]
    run_id = _run(store, "one-shot")
    tracking.log_metrics(uri, run_id, {"val_bpb": 0.47}, step=5)
    hist = tracking.client(uri).get_metric_history(run_id, "val_bpb")
    assert [(m.step, m.value) for m in hist] == [(5, 0.47)]


def test_log_metrics_becomes_the_latest_value(store) -> None:
    """An evaluation run again at the same step, or after a key was logged at a later step,
    is still what MLflow shows as the key's value."""
    uri = store[0]
    run_id = _run(store, "latest")
    c = tracking.client(uri)
    logger = tracking.MetricsLogger(uri, run_id)
    logger(9, {"seen_late": 5.0})
    logger.flush()
    tracking.log_metrics(uri, run_id, {"val_bpb": 2.0, "seen_late": 1.0}, step=5)
    tracking.log_metrics(uri, run_id, {"val_bpb": 1.5}, step=5)  # same step, straight after
    latest = c.get_run(run_id).data.metrics
    assert latest["val_bpb"] == 1.5 and latest["seen_late"] == 1.0
    assert [m.value for m in sorted(c.get_metric_history(run_id, "val_bpb"), key=lambda m: m.timestamp)] == [2.0, 1.5]
    tracking.log_metrics(uri, run_id, {"none": None}, step=5)
    assert "none" not in c.get_run(run_id).data.metrics


def test_log_params_skips_existing(store) -> None:
    uri = store[0]
    run_id = _run(store, "params")
    tracking.log_params(uri, run_id, {"lr": 0.01, "depth": 4})
    # a resumed run logs its params again, some changed: no error, the first value stays
    tracking.log_params(uri, run_id, {"lr": 0.02, "depth": 4, "batch": 32, "long": "x" * 7000})
    params = tracking.client(uri).get_run(run_id).data.params
    assert params["lr"] == "0.01" and params["depth"] == "4" and params["batch"] == "32"
    assert params["long"] == "x" * 6000


def test_log_params_many(store) -> None:
    uri = store[0]
    run_id = _run(store, "many-params")
    tracking.log_params(uri, run_id, {f"p{i:03d}": i for i in range(250)})  # several batches
    params = tracking.client(uri).get_run(run_id).data.params
    assert len(params) == 250 and params["p249"] == "249"


def test_log_dataset(store) -> None:
    uri, root, _ = store
    run_id = _run(store, "dataset")
    manifest = _manifest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about the source kind or inferred integer columns
        tracking.log_dataset(uri, run_id, manifest, root / "shards")
    run = tracking.client(uri).get_run(run_id)
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    ds = inputs[0].dataset
    assert ds.name == "token_shards"
    assert ds.digest == manifest["digest"][:16]
    assert ds.source_type == "local" and (root / "shards").resolve().as_uri() in ds.source
    assert '"type": "long", "name": "tokens"' in ds.schema
    assert {t.key: t.value for t in inputs[0].tags}.get("mlflow.data.context") == "training"
    assert mlflow.active_run() is None  # no fluent run left open in the process


def test_log_dataset_keeps_run_running(store) -> None:
    uri, root, _ = store
    run_id = _run(store, "dataset-status")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracking.log_dataset(uri, run_id, _manifest(), root / "shards")
    assert tracking.client(uri).get_run(run_id).info.status == "RUNNING"


def test_artifacts_do_not_land_in_cwd(store) -> None:
    uri, _, cwd = store
    run_id = _run(store, "artifacts")
    artifact_uri = tracking.client(uri).get_run(run_id).info.artifact_uri
    assert str(cwd) not in artifact_uri


def test_log_artifacts(store, tmp_path: Path) -> None:
    uri = store[0]
    run_id = _run(store, "artifacts-logged")
    (tmp_path / "one.txt").write_text("1")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "two.txt").write_text("2")
    tracking.log_artifacts(uri, run_id, [tmp_path / "one.txt", tmp_path / "dir", tmp_path / "missing.txt"], "data")
    names = sorted(f.path for f in tracking.client(uri).list_artifacts(run_id, "data"))
    assert names == ["data/one.txt", "data/two.txt"]


def test_run_url(store) -> None:
    uri = store[0]
    run_id = _run(store, "url")
    exp = tracking.client(uri).get_run(run_id).info.experiment_id
    view = "?workflowType=machine_learning"  # MLflow 3's UI would open its GenAI view otherwise
    assert tracking.run_url(uri, run_id) == f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run_id}{view}"
    assert tracking.run_url(uri, run_id, "9") == f"http://127.0.0.1:5000/#/experiments/9/runs/{run_id}{view}"


def test_two_processes_create_one_fresh_store(tmp_path) -> None:
    """Two runs starting at once on a fresh lake: the store is created once, neither fails."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = ("import sys; from musicml import tracking; "
            "print(tracking.start_or_resume_run(sys.argv[1], run_id=None, run_name='r', tags={}))")
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    ids = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(ids) == 2
