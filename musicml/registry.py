"""The MLflow Model Registry: every trained model logged and registered, ``champion`` only when better.

:func:`log_and_register` logs a training run's model as an MLflow LoggedModel (a pyfunc written
as code, :mod:`musicml.registry_model`, whose artifacts are a weights-only checkpoint, the
tokenizer's JSON and the config: nothing pickled), registers it as a new version under one name
per modality (``musicml-abc``, ``musicml-abc-midi``, ...) and moves the alias ``champion`` to it
only when it is strictly better (lower) than the current champion on the same metric
(``test_bpn`` where the evaluation has it, else ``test_bpb``) over the same test split (same
:func:`split_digest`). The decision and both figures are tags on the version.
:func:`load` / :func:`resolve_model` read ``models:/<name>@<alias>``, ``models:/<name>/<version>``,
``models:/<model_id>`` and ``runs:/<run_id>`` back without unpickling anything.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

from musicml import tracking

CHAMPION = "champion"
METRICS = ("test_bpn", "test_bpb")  # the comparison metric: the first of these the evaluation has
MODEL_CODE = Path(__file__).with_name("registry_model.py")
PROMOTED, KEPT, FIRST, NOT_COMPARABLE = "promoted", "kept champion", "first champion", "not comparable"
TAG = "musicml."  # prefix of the tags this module writes


def modality_name(formats: Iterable[str], family: str = "") -> str:
    """Registered-model name of a modality: the formats trained on (sorted, joined); piano rolls
    for the fractal family."""
    if family == "fractal":
        return "musicml-pianoroll"
    fmts = sorted({str(f) for f in formats})
    if not fmts:
        raise ValueError("a model's modality needs at least one format")
    return "musicml-" + "-".join(fmts)


def split_digest(doc_ids: Iterable[str]) -> str:
    """sha256 (first 16 hex digits) of the sorted, distinct document ids of a test split."""
    ids = sorted({str(d) for d in doc_ids})
    if not ids:
        raise ValueError("the test split is empty: no split digest")
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def comparison_metric(metrics: dict[str, float]) -> str:
    """``test_bpn`` when the evaluation has it, else ``test_bpb``."""
    for name in METRICS:
        if name in metrics:
            return name
    raise ValueError(f"the evaluation has none of {METRICS}: nothing to compare a model on")


def _slim_checkpoint(checkpoint: Path, out: Path) -> dict:
    """The weights, family and configs of a training checkpoint (no optimizer or RNG state)."""
    from musicml import checkpoint as ckpt

    full = ckpt.load(checkpoint)
    slim = {k: full[k] for k in ("family", "model_config", "model", "train_config", "step") if k in full}
    ckpt.save(slim, out)
    return slim


def log_and_register(tracking_uri: str, run_id: str, checkpoint: str | Path, tokenizer_dir: str | Path | None,
                     config: dict, metrics: dict[str, float], split_digest: str, *,
                     formats: Iterable[str] = ("abc",), name: str | None = None) -> dict:
    """Log the run's model, register it under its modality's name and decide on ``champion``.

    ``config`` is stored as the model's ``config.json`` (with ``formats``); ``metrics`` are the
    evaluation's figures (logged on the LoggedModel too). Returns the decision: ``decision``
    (promoted / kept champion / first champion / not comparable), ``name``, ``version``,
    ``model_id``, ``metric``, ``value``, ``champion_value`` and ``champion_version`` (the champion
    before this version; None for a first one), ``split_digest`` and ``model_uri``."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelStatus, Metric

    formats = sorted(set(formats))
    family = str(config.get("family", ""))
    name = name or modality_name(formats, family)
    metric = comparison_metric(metrics)
    value = float(metrics[metric])
    c = tracking.client(tracking_uri)
    run = c.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="musicml-model-") as tmp:
        tmp = Path(tmp)
        _slim_checkpoint(Path(checkpoint), tmp / "checkpoint.pt")
        (tmp / "config.json").write_text(json.dumps({**config, "formats": formats}, indent=1, sort_keys=True))
        artifacts = {"checkpoint": str(tmp / "checkpoint.pt"), "config": str(tmp / "config.json")}
        if tokenizer_dir is not None:
            tok = tmp / "tokenizer"
            tok.mkdir()
            for f in Path(tokenizer_dir).iterdir():
                if f.is_file() and f.suffix in (".json", ".npy"):
                    (tok / f.name).write_bytes(f.read_bytes())
            artifacts["tokenizer"] = str(tok)
        model = c.create_logged_model(
            run.info.experiment_id, name=name, source_run_id=run_id, model_type=family or None,
            params={k: str(v)[:6000] for k, v in sorted(config.items()) if not isinstance(v, dict)},
            tags={f"{TAG}split_digest": split_digest, f"{TAG}metric": metric})
        try:
            with warnings.catch_warnings():
                # known harmless: the signature is given explicitly (it carries the sampling
                # params) and text needs no example
                warnings.filterwarnings("ignore", message=".*An input example was not provided")
                mlflow.pyfunc.save_model(tmp / "model", python_model=str(MODEL_CODE), artifacts=artifacts,
                                         signature=_signature(), pip_requirements=["musicml", "torch", "mlflow"])
            c.log_model_artifacts(model.model_id, str(tmp / "model"))
        except BaseException:
            c.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            raise
        c.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    now = int(time.time() * 1000)
    c.log_batch(run_id, metrics=[Metric(k, float(v), now, 0, model_id=model.model_id)
                                 for k, v in sorted(metrics.items())])
    c.set_tag(run_id, f"{TAG}split_digest", split_digest)
    with _registry_lock(tracking_uri), _global_tracking_uri(tracking_uri):
        decision = _register(c, name, model, run_id, metric, value, split_digest)
    return {**decision, "model_id": model.model_id, "model_uri": f"models:/{model.model_id}"}


def _signature():
    """Prompts in, samples out; the sampling settings of :mod:`musicml.registry_model` as params."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    params = ParamSchema([ParamSpec("max_new_tokens", "long", 256), ParamSpec("temperature", "double", 1.0),
                          ParamSpec("seed", "long", 0), ParamSpec("format", "string", "")])
    return ModelSignature(inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("string")]),
                          params=params)


def _registry_lock(tracking_uri: str):
    """A file lock beside a sqlite store (two registrations take turns); else no lock."""
    from contextlib import nullcontext

    from musicml.locks import file_lock

    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return file_lock(db.with_name(db.name + ".registry.lock"))
    return nullcontext()


def _global_tracking_uri(tracking_uri: str):
    """MLflow's registry store resolves a ``models:/<model_id>`` source with the process-global
    tracking URI (its own TODO says so): point that at ``tracking_uri`` for the block only."""
    from contextlib import nullcontext

    try:
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # a later MLflow: nothing global to point
        return nullcontext()
    return _use_tracking_uri(tracking_uri)


def _register(c, name: str, model, run_id: str, metric: str, value: float, digest: str) -> dict:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="musicml models of one modality; alias "
                                  f"{CHAMPION!r}: the best on the test split it was compared on")
    mv = c.create_model_version(name, source=f"models:/{model.model_id}", run_id=run_id, model_id=model.model_id)
    try:
        champ = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champ = None
    old_value = None
    if champ is None:
        decision = FIRST
    else:
        tags = champ.tags
        if (tags.get(f"{TAG}split_digest") != digest or tags.get(f"{TAG}metric") != metric
                or not tags.get(f"{TAG}value")):  # another split, metric, or a champion set by hand
            decision = NOT_COMPARABLE
        else:
            old_value = float(tags[f"{TAG}value"])
            decision = PROMOTED if value < old_value else KEPT
    version_tags = {"decision": decision, "model_id": model.model_id, "metric": metric, "value": repr(value), "split_digest": digest,
                    "champion_value": "" if old_value is None else repr(old_value),
                    "champion_version": "" if champ is None else str(champ.version)}
    for k, v in version_tags.items():
        c.set_model_version_tag(name, mv.version, f"{TAG}{k}", v)
    if decision in (FIRST, PROMOTED):
        c.set_registered_model_alias(name, CHAMPION, mv.version)
    return {"decision": decision, "name": name, "version": str(mv.version), "metric": metric, "value": value,
            "champion_value": old_value, "champion_version": None if champ is None else str(champ.version),
            "split_digest": digest}


def _model_id(c, uri: str) -> str:
    """The LoggedModel id behind ``models:/name@alias``, ``models:/name/version``,
    ``models:/<model_id>`` or ``runs:/<run_id>`` (the run's newest logged model)."""
    from mlflow.exceptions import MlflowException

    if uri.startswith("runs:/"):
        run_id = uri[len("runs:/"):].strip("/").split("/")[0]
        run = c.get_run(run_id)
        found = c.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'",
                                       order_by=[{"field_name": "creation_time", "ascending": False}])
        if not found:
            raise FileNotFoundError(f"{uri}: run {run_id} has no logged model")
        return found[0].model_id
    if not uri.startswith("models:/"):
        raise ValueError(f"{uri!r} is not a models:/ or runs:/ URI")
    rest = uri[len("models:/"):].strip("/")
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = c.get_model_version_by_alias(name, alias)
        elif "/" in rest:
            name, version = rest.split("/", 1)
            mv = c.get_model_version(name, version)
        else:
            return c.get_logged_model(rest).model_id
    except MlflowException as err:
        raise FileNotFoundError(f"{uri}: no such model in {c.tracking_uri} ({err.message})") from None
    model_id = mv.model_id or mv.tags.get(f"{TAG}model_id") or (
        mv.source[len("models:/"):] if (mv.source or "").startswith("models:/m-") else None)
    if not model_id:
        raise FileNotFoundError(f"{uri}: version {mv.version} has no logged model")
    return model_id


def resolve_model(uri: str, tracking_uri: str, dst: str | Path | None = None) -> tuple[Path, Path | None]:
    """``(checkpoint, tokenizer dir or None)`` of a model URI, downloaded to ``dst`` (a new temp
    folder when None)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    c = tracking.client(tracking_uri)
    try:
        model = c.get_logged_model(_model_id(c, uri))
    except MlflowException as err:
        raise FileNotFoundError(f"{uri}: no such model in {tracking_uri} ({err.message})") from None
    dst = Path(dst or tempfile.mkdtemp(prefix="musicml-model-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=str(dst),
                                                     tracking_uri=tracking_uri))
    arts = local / "artifacts"
    tok = arts / "tokenizer"
    return arts / "checkpoint.pt", tok if (tok / "tokenizer_info.json").exists() else None


def load(uri: str, tracking_uri: str, device: str = "cpu"):
    """``(model, codec or None, meta)`` of a model URI, rebuilt with ``torch.load(weights_only=True)``."""
    from musicml.checkpoint import load_model
    from musicml.tokenizers import load_codec

    ckpt, tok = resolve_model(uri, tracking_uri)
    model, meta = load_model(ckpt, device=device)
    return model, (load_codec(tok) if tok else None), meta


def test_split_digest(lake) -> str:
    """:func:`split_digest` of the document ids in the lake's test shards."""
    from musicml import shards
    from musicml.evaluate.bpn import shard_doc_ids

    return split_digest(shard_doc_ids(shards.shard_paths(lake.path("shards"), "test")))


def register_latest(lake, *, tracking_uri: str, run: dict | None = None) -> dict:
    """:func:`log_and_register` for a training run (its record; default the lake's latest) with
    its ``evaluation.json`` (the asset ``registered_model``, after ``model_evaluation``)."""
    from musicml import shards
    from musicml.lake import read_json

    run = run or read_json(lake.path("models", "latest.json"))
    evaluation = Path(run["run_dir"]) / "evaluation.json"
    if not evaluation.exists():
        raise FileNotFoundError(f"{evaluation}: evaluate the run before registering it")
    config = {**run.get("train_config", {}), "data_digest": run.get("data_digest", "")}
    family = str(config.get("family", ""))
    manifest = lake.path("shards", "manifest.json")
    formats = (shards.read_manifest(lake.path("shards")).get("formats") if manifest.exists() else None) or ["abc"]
    tokenizer = lake.path("tokenizer") if family != "fractal" else None
    return log_and_register(tracking_uri, run["mlflow_run_id"], run["checkpoint"], tokenizer, config,
                            read_json(evaluation), test_split_digest(lake), formats=formats)
