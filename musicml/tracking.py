"""MLflow tracking: one run per training, metrics buffered, data logged as a dataset input."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

DEFAULT_EXPERIMENT = "musicml"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"  # "Machine learning"
# MLflow 3.x's UI picks its view from the page address (`?workflowType=`), else from the browser's
# last choice in the sidebar switch (localStorage `mlflow.workflowType`, default `genai`), not from
# the experiment's kind tag: links into the UI carry this query to open the model-training view
UI_VIEW_QUERY = "workflowType=machine_learning"
UI_URL = "http://127.0.0.1:5000"  # `mlflow ui` on its default address
SYSTEM_METRICS_INTERVAL_S = 10.0  # seconds between system-metric samples of a training run
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables..."


_READY_STORES: set[str] = set()


def client(tracking_uri: str) -> MlflowClient:
    """A client bound to ``tracking_uri`` (no process-global MLflow state is touched).

    A SQLite store is created (or its schema migrated) once, under a file lock beside the
    database, before anything uses it: two runs starting at once on a fresh lake would otherwise
    both run MLflow's migrations and one would fail."""
    if tracking_uri.startswith("sqlite:///") and tracking_uri not in _READY_STORES:
        from musicml.locks import file_lock

        db = Path(tracking_uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(db.with_name(db.name + ".lock")):
            c = MlflowClient(tracking_uri=tracking_uri)  # creates the store, runs its migrations
            c.search_experiments(max_results=1)
        _READY_STORES.add(tracking_uri)
        return c
    return MlflowClient(tracking_uri=tracking_uri)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifact root of a new experiment: ``$MUSICML_ARTIFACTS`` (any URL MLflow or
    :mod:`musicml.storage` serves: ``file://``, ``s3://``, ``memory://``); else, for a sqlite
    store, beside the database (``<lake>/mlartifacts``); for another database store
    (``postgresql://``, ``mysql://``), ``<lake>/mlartifacts`` of ``$MUSICML_LAKE``; never MLflow's
    ``./mlruns``. None for a tracking server (``http(s)://``), which chooses its own."""
    from musicml import env

    if root := env.artifact_root():
        return root.rstrip("/")
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    if tracking_uri.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "mssql"):
        from musicml.lake import Lake

        return (Lake.from_env().root / "mlartifacts").as_uri()
    return None


def experiment_id(c: MlflowClient, name: str = DEFAULT_EXPERIMENT) -> str:
    """The experiment's id, created if missing; tagged as a model-training experiment (MLflow's
    ``mlflow.experimentKind``, which spares the UI's "choose a type" prompt; an experiment made
    before the tag existed gets it too). The view is the link's: :func:`experiment_url`."""
    exp = c.get_experiment_by_name(name)
    if exp:
        if exp.tags.get(EXPERIMENT_KIND_TAG) is None:
            c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=artifact_location(c.tracking_uri),
                               tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})


@contextmanager
def system_metrics(tracking_uri: str, run_id: str, interval_s: float = SYSTEM_METRICS_INTERVAL_S) -> Iterator[bool]:
    """Log MLflow's system metrics (``system/cpu_utilization_percentage``, memory, disk, network,
    GPU when there is one) to the run every ``interval_s`` seconds for the block, and once more
    when it ends (so a block shorter than ``interval_s`` has a sample too); continues the steps
    of a resumed run. Yields False (and logs nothing) without ``psutil``."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    except ImportError as err:  # psutil missing
        logging.getLogger(__name__).warning("no system metrics: %s", err)
        yield False
        return
    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=True,
                                   tracking_uri=tracking_uri)
    monitor.start()
    try:
        yield True
    finally:
        monitor.finish()
        try:  # the closing sample: MLflow's monitor logs only at the end of each full interval
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as err:  # noqa: BLE001 - a lost sample must not fail the training
            logging.getLogger(__name__).warning("last system-metrics sample not logged: %s", err)


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
    """Log one set of figures (an evaluation) so that each becomes its key's latest value.

    Unlike :class:`MetricsLogger` nothing is skipped: a key the run already holds (an evaluation
    run again) gets a new point at no earlier step and with a later timestamp than every earlier
    point of the key, which is how MLflow orders a key's latest value (step, then timestamp).
    """
    c = client(tracking_uri)
    now = int(time.time() * 1000)
    held = c.get_run(run_id).data.metrics
    batch = []
    for k, v in sorted(metrics.items()):
        if v is None:
            continue
        st, ts = int(step or 0), now
        if k in held:
            history = c.get_metric_history(run_id, k)
            st = max(st, max(m.step for m in history))
            ts = max(ts, 1 + max(m.timestamp for m in history))
        batch.append(Metric(key=k, value=float(v), timestamp=ts, step=st))
    for i in range(0, len(batch), 900):  # MLflow caps a batch at 1000 metrics
        c.log_batch(run_id, metrics=batch[i : i + 900])


def log_artifacts(tracking_uri: str, run_id: str, paths: list[Path], artifact_path: str | None = None) -> None:
    c = client(tracking_uri)
    for p in paths:
        p = Path(p)
        if p.is_dir():
            c.log_artifacts(run_id, str(p), artifact_path)
        elif p.exists():
            c.log_artifact(run_id, str(p), artifact_path)


def log_dataset(tracking_uri: str, run_id: str, manifest: dict, source: Path, name: str = "token_shards") -> None:
    """Log the token shards as an MLflow dataset input (one row per shard, the manifest digest).

    The source is a ``local`` dataset source with the shard folder's ``file://`` URI and the
    schema is declared, so MLflow neither guesses the source kind nor infers (and warns about)
    integer columns.
    """
    import json

    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.types import ColSpec, Schema

    schema = Schema([ColSpec("string", "split"), ColSpec("string", "file"), ColSpec("long", "rows"),
                     ColSpec("long", "tokens"), ColSpec("string", "sha256")])
    n_rows = sum(len(info["shards"]) for info in manifest["splits"].values())
    src = get_dataset_source_from_json(json.dumps({"uri": Path(source).resolve().as_uri()}), source_type="local")
    dataset = Dataset(
        name=name, digest=manifest["digest"][:16], source_type="local", source=src.to_json(),
        schema=json.dumps({"mlflow_colspec": schema.to_dict()}),
        profile=json.dumps({"num_rows": n_rows, "num_elements": n_rows * len(schema.inputs)}),
    )
    entity = DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])
    client(tracking_uri).log_inputs(run_id, datasets=[entity])


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(tracking_uri).set_terminated(run_id, status=status)


def run_url(tracking_uri: str, run_id: str, experiment_id_: str | None = None) -> str:
    """Where the run is in the MLflow UI (``mlflow ui`` on its default 127.0.0.1:5000), in the
    model-training view (:data:`UI_VIEW_QUERY`)."""
    exp = experiment_id_ or client(tracking_uri).get_run(run_id).info.experiment_id
    return f"{UI_URL}/#/experiments/{exp}/runs/{run_id}?{UI_VIEW_QUERY}"


def experiment_url(tracking_uri: str, name: str = DEFAULT_EXPERIMENT, ui: str = UI_URL) -> str:
    """The experiment's page in the MLflow UI at ``ui``, opening on its training runs (the
    model-training view: :data:`UI_VIEW_QUERY`) whatever the browser chose before."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id(client(tracking_uri), name)}?{UI_VIEW_QUERY}"
