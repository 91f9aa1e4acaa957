"""MLflow tracking: one run per training, metrics buffered, data logged as a dataset input."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

DEFAULT_EXPERIMENT = "musicml"
logging.getLogger("alembic").setLevel(logging.WARNING)


def client(tracking_uri: str) -> MlflowClient:
    """A client bound to ``tracking_uri`` (no process-global MLflow state is touched)."""
    return MlflowClient(tracking_uri=tracking_uri)


def artifact_location(tracking_uri: str) -> str | None:
    """For a sqlite store, artifacts go beside the database (``<lake>/mlartifacts``), not ./mlruns."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def experiment_id(c: MlflowClient, name: str = DEFAULT_EXPERIMENT) -> str:
    exp = c.get_experiment_by_name(name)
    if exp:
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=artifact_location(c.tracking_uri))


def start_or_resume_run(
    tracking_uri: str,
    *,
    run_id: str | None,
    run_name: str,
    tags: dict[str, str],
    experiment: str = DEFAULT_EXPERIMENT,
) -> str:
    """Reuse ``run_id`` if it exists in this store (a resumed training), else create a run."""
    c = client(tracking_uri)
    if run_id:
        try:
            c.get_run(run_id)
            c.update_run(run_id, status="RUNNING")
            for k, v in tags.items():
                c.set_tag(run_id, k, v)
            return run_id
        except mlflow.exceptions.MlflowException:
            pass
    run = c.create_run(experiment_id(c, experiment), run_name=run_name, tags=tags)
    return run.info.run_id


class MetricsLogger:
    """Buffers per-step metrics and writes them to MLflow in batches (sqlite is slow per call).

    Resume-safe: steps the run already holds for a key are not logged again (a run resumed from
    its last checkpoint re-runs the steps after it), and the buffer is written out at every
    multiple of ``flush_at`` (pass the checkpoint interval) so that nothing before a checkpoint
    can be lost when the process dies.
    """

    def __init__(self, tracking_uri: str, run_id: str, flush_every: int = 50, flush_at: int = 0):
        self.client = client(tracking_uri)
        self.run_id = run_id
        self.flush_every = flush_every
        self.flush_at = flush_at
        self._buffer: list[Metric] = []
        self._logged = {key: max(m.step for m in self.client.get_metric_history(run_id, key))
                        for key in self.client.get_run(run_id).data.metrics}

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        ts = int(time.time() * 1000)
        for k, v in metrics.items():
            if v is None or step <= self._logged.get(k, -1):
                continue
            self._buffer.append(Metric(key=k, value=float(v), timestamp=ts, step=int(step)))
        if len(self._buffer) >= self.flush_every or (self.flush_at > 0 and step % self.flush_at == 0):
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self._buffer), 900):  # MLflow caps a batch at 1000 metrics
            self.client.log_batch(self.run_id, metrics=self._buffer[i : i + 900])
        for m in self._buffer:
            self._logged[m.key] = max(self._logged.get(m.key, -1), m.step)
        self._buffer.clear()


def log_params(tracking_uri: str, run_id: str, params: dict[str, Any]) -> None:
    """Log params, skipping keys already logged (MLflow refuses to change a param)."""
    c = client(tracking_uri)
    existing = c.get_run(run_id).data.params
    from mlflow.entities import Param

    new = [Param(k, str(v)[:6000]) for k, v in sorted(params.items()) if k not in existing]
    for i in range(0, len(new), 90):
        c.log_batch(run_id, params=new[i : i + 90])


def log_metrics(tracking_uri: str, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    logger = MetricsLogger(tracking_uri, run_id)
    logger(step or 0, metrics)
    logger.flush()


def log_artifacts(tracking_uri: str, run_id: str, paths: list[Path], artifact_path: str | None = None) -> None:
    c = client(tracking_uri)
    for p in paths:
        p = Path(p)
        if p.is_dir():
            c.log_artifacts(run_id, str(p), artifact_path)
        elif p.exists():
            c.log_artifact(run_id, str(p), artifact_path)


def log_dataset(tracking_uri: str, run_id: str, manifest: dict, source: Path, name: str = "token_shards") -> None:
    """Log the token shards as an MLflow dataset input (one row per shard, the manifest digest)."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    rows = [
        {"split": split, "file": e["file"], "rows": e["rows"], "tokens": e["tokens"], "sha256": e["sha256"]}
        for split, info in sorted(manifest["splits"].items())
        for e in info["shards"]
    ]
    from mlflow.entities import Dataset, DatasetInput, InputTag

    ds = from_pandas(pd.DataFrame(rows), source=str(source), name=name, digest=manifest["digest"][:16])
    entity = DatasetInput(Dataset(**ds.to_dict()), tags=[InputTag("mlflow.data.context", "training")])
    client(tracking_uri).log_inputs(run_id, datasets=[entity])


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(tracking_uri).set_terminated(run_id, status=status)


def run_url(tracking_uri: str, run_id: str, experiment_id_: str | None = None) -> str:
    """Where the run is in the MLflow UI (``mlflow ui`` on its default 127.0.0.1:5000)."""
    exp = experiment_id_ or client(tracking_uri).get_run(run_id).info.experiment_id
    return f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run_id}"
