"""The asset graph's steps as plain functions over a lake: usable from a notebook or a script.

Each ``*_step`` reads what the previous step wrote under the lake, writes its own outputs
atomically, and returns what it did (for Dagster metadata or a script's print). The Dagster
assets in ``pipelines/`` are thin wrappers over these; ``bench/bench_pipeline.py`` calls them
directly to measure what Dagster adds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from musicml import automation, catalog, settings, shards, tracking
from musicml import ingest as ingest_lib
from musicml.curate.augment import AugmentConfig, AugmentResult, augment
from musicml.curate.dedup import DedupResult, deduplicate
from musicml.curate.splits import SplitConfig, assign_splits
from musicml.evaluate.config import EvaluationConfig
from musicml.generate.config import SamplesConfig
from musicml.ingest import parsed
from musicml.ingest.corpus import seed_drop_zone
from musicml.lake import Lake, read_frame, read_json, write_json, write_parquet
from musicml.shards.config import ShardsConfig
from musicml.tokenizers import Codec, TokenizerConfig, load_codec, save_codec, train_codec

Progress = Callable[..., None]

def ingest_step(lake: Lake, config: ingest_lib.IngestConfig | None = None, *, seed_default_corpus: bool = True,
                progress: Progress | None = None) -> tuple[ingest_lib.IngestResult, int]:
    """Seed an empty drop zone (optional), then account for every file (re-examining only
    ``config.paths`` when given); ``(result, seeded files)``.

    Holds the lake's ingestion lock: two runs started at once on one lake take turns, and the
    second reuses what the first parsed, so no file is ingested twice."""
    from musicml.ingest import buckets
    from musicml.locks import file_lock

    with file_lock(lake.path("ingest", "ingest.lock")):
        seeded = seed_drop_zone(lake.raw_dir) if seed_default_corpus else 0
        out = ingest_lib.files_table_path(lake)
        # what bucket ingestions (other machines) have read counts as read: newest table last
        previous = buckets.earlier_rows(buckets.newest_last([out, *buckets.bucket_tables(lake)]))
        result = ingest_lib.ingest(lake, config, previous, progress)
        write_parquet(out, result.files)
    return result, seeded


def ingest_bucket_step(lake: Lake, bucket: str, config: ingest_lib.IngestConfig | None = None, *,
                       progress: Progress | None = None) -> ingest_lib.IngestResult:
    """Ingest one bucket of the drop zone (``k-of-n``, :mod:`musicml.ingest.buckets`) into the
    parse cache and ``ingest/buckets/<bucket>.parquet``; buckets may run at once on several
    machines sharing the lake (each takes only its own lock). ``config.paths`` is ignored."""
    from dataclasses import replace

    from musicml.ingest import buckets
    from musicml.locks import file_lock

    k, n = buckets.parse_bucket_name(bucket)
    cfg = replace(config or ingest_lib.IngestConfig(), paths=None)
    out = buckets.bucket_table_path(lake, bucket)
    with file_lock(out.with_suffix(".lock")):
        previous = buckets.earlier_rows(buckets.newest_last([ingest_lib.files_table_path(lake), out]))
        result = ingest_lib.ingest(lake, cfg, previous, progress, keep=lambda rel: buckets.bucket_of(rel, n) == k)
        write_parquet(out, result.files)
    return result


def parse_step(lake: Lake) -> tuple[pl.DataFrame, parsed.PublishedTable]:
    """Pieces and notes of every ingested file, from the parse cache, published as the lake's
    ``parsed/`` tables (:mod:`musicml.ingest.parsed`: both tables' parts are the cache's); the
    pieces' key columns (no text) and what the note table is."""
    return parsed.publish(lake, read_frame(ingest_lib.files_table_path(lake)))


def dedup_step(lake: Lake) -> DedupResult:
    pieces = parsed.read_pieces(lake)
    result = deduplicate(pieces, parsed.read_notes(lake))
    write_parquet(lake.path("curated", "deduped.parquet"), result.pieces)
    return result


def augment_step(lake: Lake, config: AugmentConfig = AugmentConfig(), progress: Progress | None = None) -> AugmentResult:
    pieces = pl.read_parquet(lake.path("curated", "deduped.parquet"))
    notes = parsed.read_notes(lake)
    result = augment(pieces.filter(pl.col("is_representative")), notes, config, progress)
    write_parquet(lake.path("curated", "augmented.parquet"), result.table)
    return result


def split_step(lake: Lake, config: SplitConfig = SplitConfig()) -> pl.DataFrame:
    """One row per augmented copy and per duplicate, each with its work's split; returns a summary."""
    works = pl.read_parquet(lake.path("curated", "deduped.parquet"))
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"))
    assignment = assign_splits(works["work_id"].to_list(), config)
    text_hash = pl.col("text").hash(seed=0).alias("text_hash")
    rows = pl.concat(
        [
            aug.select(pl.col("aug_id").alias("row_id"), "piece_id", "work_id", "format", "shift",
                       pl.lit("augmented").alias("kind"), "text_bytes", text_hash),
            works.filter(~pl.col("is_representative")).select(
                pl.col("piece_id").alias("row_id"), "piece_id", "work_id", "format",
                pl.lit(0, pl.Int8).alias("shift"), pl.format("duplicate:{}", "dup_kind").alias("kind"),
                "text_bytes", text_hash),
        ]
    ).join(assignment.select("work_id", "split"), on="work_id", how="left").sort("row_id")
    write_parquet(lake.path("curated", "splits.parquet"), rows)
    return rows.group_by("split").agg(
        pl.col("work_id").n_unique().alias("works"), pl.len().alias("rows"), pl.col("text_bytes").sum().alias("bytes")
    ).sort("split")


def split_texts(lake: Lake) -> pl.DataFrame:
    """Augmented rows (originals and shifted copies) with their split and text."""
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"))
    rows = pl.read_parquet(lake.path("curated", "splits.parquet")).filter(pl.col("kind") == "augmented")
    return aug.join(rows.select(pl.col("row_id").alias("aug_id"), "split"), on="aug_id", how="inner").sort("aug_id")


def tokenizer_step(lake: Lake, config: TokenizerConfig | None = None, **overrides) -> Codec:
    """Train the tokenizer on the train split only, or keep the saved one (``retrain``, decided
    on figures: :mod:`musicml.tokenizers.retrain`), and save it (JSON) under ``tokenizer/``; the
    decision is ``codec.info["retrain"]``. The train split's encodings go to the token cache,
    where the shards step finds them. ``overrides`` are :class:`TokenizerConfig` fields.
    Tokenizer steps of one lake take turns (``tokenizer/.lock``): none reads a half-written one."""
    from musicml.locks import file_lock
    from musicml.tokenizers import retrain

    cfg = settings.merged(TokenizerConfig, config, overrides)
    retrain.check_mode(cfg.retrain)
    with file_lock(lake.path("tokenizer", ".lock")):
        return _tokenizer_step(lake, cfg)


def _tokenizer_step(lake: Lake, cfg: TokenizerConfig) -> Codec:
    from musicml.shards.cache import CACHE_DIR, TokenCache, doc_keys
    from musicml.tokenizers import retrain

    train = split_texts(lake).filter(pl.col("split") == "train")
    formats, texts = train["format"].to_list(), train["text"].to_list()
    nbytes = [len(t.encode("utf-8")) for t in texts]
    keys = doc_keys(formats, texts)
    cache_dir, tok_dir = lake.path("shards", CACHE_DIR), lake.dir("tokenizer")
    saved, figures, unreadable = None, None, ""
    if cfg.retrain != "always" and (tok_dir / "tokenizer_info.json").exists():
        try:
            saved = load_codec(tok_dir)
        except Exception as err:  # noqa: BLE001 (HF tokenizers raises a bare Exception)
            unreadable = f"the saved tokenizer could not be read ({type(err).__name__}: {err})"
    if saved is not None:
        docs, stats = TokenCache(cache_dir, saved.digest).encode(saved, formats, texts, keys)
        figures = {**retrain.measure(saved, formats, nbytes, docs), "cache": stats.to_dict()}
    decision = retrain.decide(cfg, saved.info if saved is not None else None, figures)
    if unreadable:
        decision.reason = unreadable
    if decision.keep:
        codec = saved
    else:
        codec = train_codec(texts, cfg, formats=formats)
        docs, _ = TokenCache(cache_dir, codec.digest).encode(codec, formats, texts, keys)
        own = retrain.measure(codec, formats, nbytes, docs)
        codec.info.update({"config": retrain.training_settings(cfg), "bytes_per_token": own["bytes_per_token"]})
    codec.info["retrain"] = decision.to_dict()
    save_codec(codec, tok_dir)
    return codec


def shards_step(lake: Lake, config: ShardsConfig | None = None, **overrides) -> dict:
    """Tokenize every document into per-split parquet shards, write the manifest and the catalog;
    ``overrides`` are :class:`musicml.shards.config.ShardsConfig` fields."""
    cfg = settings.merged(ShardsConfig, config, overrides)
    tokens_per_shard, augment_eval_splits, seed = cfg.tokens_per_shard, cfg.augment_eval_splits, cfg.seed
    codec = load_codec(lake.path("tokenizer"))
    rows = split_texts(lake)
    if not augment_eval_splits:
        rows = rows.filter((pl.col("split") == "train") | (pl.col("shift") == 0))
    formats, texts = rows["format"].to_list(), rows["text"].to_list()
    cache_stats = None
    if cfg.cache_tokens:  # only documents whose text is new to this tokenizer are encoded
        from musicml.shards.cache import CACHE_DIR, TokenCache

        ids, cache_stats = TokenCache(lake.path("shards", CACHE_DIR), codec.digest).encode(codec, formats, texts)
    else:
        ids = codec.encode_documents(formats, texts)
    docs: dict[str, list[shards.Doc]] = {"train": [], "valid": [], "test": []}
    no_events = 0
    for (aug_id, work_id, fmt, shift, split), toks in zip(
        rows.select("aug_id", "work_id", "format", "shift", "split").iter_rows(), ids
    ):
        if codec.decodes_to_score and len(toks) <= 2:  # event codec: a piece without notes is counted
            no_events += 1
            continue
        docs[split].append(shards.Doc(aug_id, work_id, fmt, shift, toks))
    shard_dir = lake.dir("shards")
    extra = {"formats": sorted(set(rows.filter(pl.col("split") == "train")["format"].to_list())),
             "tokenizer_digest": codec.digest, "vocab_size": codec.vocab_size, "bos_id": codec.bos_id,
             "bytes": {s: int(rows.filter(pl.col("split") == s)["text_bytes"].sum()) for s in docs}}
    if codec.decodes_to_score:
        extra["documents_without_events"] = no_events
    manifest = shards.write_shards(docs, shard_dir, tokens_per_shard=tokens_per_shard, seed=seed, extra=extra)
    table = pl.DataFrame(
        [{"split": s, **e} for s, v in manifest["splits"].items() for e in v["shards"]],
        schema={"split": pl.String, "file": pl.String, "rows": pl.Int64, "tokens": pl.Int64, "sha256": pl.String},
    )
    write_parquet(shard_dir / "shards.parquet", table)
    manifest["token_cache"] = cache_stats.to_dict() if cache_stats else None  # returned, not in manifest.json
    manifest["catalog_views"] = catalog.refresh(lake)
    return manifest


# ---------------------------------------------------------------------------------------------
# training, evaluation, samples


def open_run_dir(lake: Lake, name: str, fresh: bool = False) -> tuple[Path, Path, dict]:
    """A training run's folder (emptied first when ``fresh``), its ``run.json`` and that state."""
    run_dir = lake.path("models", name)
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "run.json"
    return run_dir, state_path, read_json(state_path) if state_path.exists() else {}


def run_name(cfg, data_digest: str) -> str:
    """Folder name of a training run: same data and config (time budget aside) → same run, resumable."""
    # warm_start "none" (the default) leaves the name as it was before that setting existed
    key = {k: v for k, v in cfg.to_dict().items()
           if k != "time_budget_s" and not (k == "warm_start" and v == "none")}
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return f"{cfg.family}-{data_digest[:8]}-{h}"


@dataclass
class TrainingRun:
    """Where a training run lives and what it produced."""

    name: str
    run_dir: Path
    mlflow_run_id: str
    result: dict = field(default_factory=dict)
    checkpoint: str = ""


Launcher = Callable[..., dict]


def train_tracked(cfg, shard_dir: Path, run_dir: Path, bos_id: int, token_bytes: Path, uri: str, run_id: str,
                  log: Callable[[int, dict], None] | None = None) -> dict:
    """Train in this process with every metric also going to the MLflow run ``run_id``.

    Metrics are flushed at each checkpoint and when training stops for any reason, and steps
    the run already holds are skipped, so a cut-off run resumes with one unbroken loss curve.
    Used by :func:`inprocess_launcher` and by the Dagster Pipes training process.
    """
    from musicml.train import train

    logger = tracking.MetricsLogger(uri, run_id, flush_at=cfg.checkpoint_every)

    def both(step: int, metrics: dict) -> None:
        logger(step, metrics)
        if log:
            log(step, metrics)

    try:
        with tracking.system_metrics(uri, run_id):
            result = train(cfg, shard_dir, run_dir, bos_id=bos_id,
                           token_bytes=np.load(token_bytes, allow_pickle=False), log=both)
    finally:
        logger.flush()
    return result.to_dict()


def inprocess_launcher(log: Callable[[int, dict], None] | None = None) -> Launcher:
    """Train in this process; ``log`` also receives every metrics dict."""

    def launch(cfg, shard_dir: Path, run_dir: Path, bos_id: int, token_bytes: Path, uri: str, run_id: str) -> dict:
        return train_tracked(cfg, shard_dir, run_dir, bos_id, token_bytes, uri, run_id, log)

    return launch


def train_step(lake: Lake, cfg, *, tracking_uri: str, tags: dict[str, str] | None = None,
               experiment: str = tracking.DEFAULT_EXPERIMENT, launcher: Launcher | None = None,
               fresh: bool = False) -> TrainingRun:
    """Train on the current shards with one MLflow run (resumed if this exact run was cut off).
    ``family="fractal"`` trains on the piano rolls instead (:mod:`musicml.pianorolls.steps`).

    Trainings of one lake take turns (``<lake>/train.lock``): two materializations at once (two
    Dagster homes) would otherwise train one run in one folder together, each with its own
    MLflow run; the second now resumes the first's finished run."""
    import logging

    from musicml.locks import file_lock

    def waiting() -> None:
        logging.getLogger(__name__).warning("another training of this lake is running: waiting for it")

    with file_lock(lake.path("train.lock"), waiting):
        return _train_step(lake, cfg, tracking_uri=tracking_uri, tags=tags, experiment=experiment,
                           launcher=launcher, fresh=fresh)


def _train_step(lake: Lake, cfg, *, tracking_uri: str, tags: dict[str, str] | None,
                experiment: str, launcher: Launcher | None, fresh: bool) -> TrainingRun:
    if cfg.family == "fractal":  # in this process: the Pipes launcher runs the token loop
        from musicml.pianorolls.steps import fractal_train_step

        return fractal_train_step(lake, cfg, tracking_uri=tracking_uri, tags=tags, experiment=experiment,
                                  fresh=fresh)
    shard_dir = lake.path("shards")
    manifest = shards.read_manifest(shard_dir)
    codec = load_codec(lake.path("tokenizer"))
    name = run_name(cfg, manifest["digest"])
    run_dir, state_path, state = open_run_dir(lake, name, fresh)
    all_tags = {"data_digest": manifest["digest"], "tokenizer_digest": codec.digest, "family": cfg.family,
                "musicml.run_dir": str(run_dir), **(tags or {})}
    run_id = tracking.start_or_resume_run(tracking_uri, run_id=state.get("mlflow_run_id"), run_name=name,
                                          tags=all_tags, experiment=experiment)
    state.update({"mlflow_run_id": run_id, "name": name})
    write_json(state_path, state)
    mcfg = cfg.model_config(codec.vocab_size)
    tracking.log_params(tracking_uri, run_id, {
        **{f"train.{k}": v for k, v in cfg.to_dict().items()},
        **{f"model.{k}": v for k, v in mcfg.items() if not isinstance(v, dict)},
        "vocab_size": codec.vocab_size, "tokenizer": codec.kind, "pretokenizer": codec.info["pretokenizer"],
        "data_digest": manifest["digest"], "train_tokens": manifest["splits"]["train"]["tokens"],
    })
    if not state.get("dataset_logged"):
        tracking.log_dataset(tracking_uri, run_id, manifest, shard_dir)
        tracking.log_artifacts(tracking_uri, run_id, [lake.path("tokenizer", "tokenizer.json"),
                                                      lake.path("tokenizer", "tokenizer_info.json"),
                                                      shard_dir / "manifest.json"], "data")
        state["dataset_logged"] = True
        write_json(state_path, state)
    automation.record_works(lake, run_dir)  # what new_works_sensor counts new works against
    if getattr(cfg, "warm_start", "none") != "none":
        write_json(run_dir / "warm_start.json", resolve_warm_start(lake, cfg, codec.digest, manifest, run_dir,
                                                                  tracking_uri=tracking_uri))
    launch = launcher or inprocess_launcher()
    try:
        result = launch(cfg, shard_dir, run_dir, codec.bos_id, lake.path("tokenizer", "token_bytes.npy"),
                        tracking_uri, run_id)
    except BaseException:
        tracking.end_run(tracking_uri, run_id, "KILLED")  # resumable: checkpoints stay in run_dir
        raise
    tracking.log_artifacts(tracking_uri, run_id, [Path(result["checkpoint"])], "checkpoints")
    tracking.log_params(tracking_uri, run_id, {"warm_started_from": result.get("warm_started_from") or "none"})
    tracking.end_run(tracking_uri, run_id)
    record = {**state, "checkpoint": result["checkpoint"], "result": result, "train_config": cfg.to_dict(),
              "run_dir": str(run_dir), "data_digest": manifest["digest"], "tokenizer_digest": codec.digest}
    write_json(state_path, record)
    write_json(lake.path("models", "latest.json"), record)
    curve = loss_curve(tracking_uri, run_id, run_dir / "loss_curve.png")
    if curve:
        tracking.log_artifacts(tracking_uri, run_id, [curve], "plots")
    return TrainingRun(name, run_dir, run_id, result, result["checkpoint"])


def resolve_warm_start(lake: Lake, cfg, tokenizer_digest: str, manifest: dict, run_dir: Path, *,
                       tracking_uri: str) -> dict:
    """The checkpoint ``cfg.warm_start`` names, for the loop (``run_dir/warm_start.json``):
    ``{"source", "checkpoint"}``, or ``{"source", "reason"}`` when there is none or it was
    trained with another tokenizer (the loop checks the family and parameter shapes)."""
    from musicml import checkpoint as ckpt
    from musicml import registry

    source = cfg.warm_start
    if ckpt.latest_checkpoint(run_dir / "checkpoints") is not None:
        return {"source": source, "reason": "the run resumes from its own checkpoint"}
    if source == "latest":
        path = lake.path("models", "latest.json")
        if not path.is_file():
            return {"source": source, "reason": f"no finished training to start from ({path} missing)"}
        record = read_json(path)
        if Path(record.get("run_dir", "")) == Path(run_dir):
            return {"source": source, "reason": "the latest training is this run"}
        theirs = record.get("tokenizer_digest") or tracking.client(tracking_uri).get_run(
            record["mlflow_run_id"]).data.tags.get("tokenizer_digest", "")
        checkpoint, label = record.get("checkpoint", ""), f"run {record.get('name', '?')}"
    elif source == "champion":
        name = registry.modality_name(manifest.get("formats") or ["abc"], cfg.family)
        uri = f"models:/{name}@{registry.CHAMPION}"
        try:
            path, tok = registry.resolve_model(uri, tracking_uri, run_dir / "warm_start_model")
        except FileNotFoundError as err:
            return {"source": source, "reason": f"no champion to start from: {err}"}
        theirs = read_json(tok / "tokenizer_info.json").get("digest", "") if tok else ""
        checkpoint, label = str(path), uri
    else:
        from musicml.train.config import WARM_START_CHOICES

        raise ValueError(f"unknown warm_start {source!r}; choose one of {WARM_START_CHOICES}")
    if theirs != tokenizer_digest:
        return {"source": source, "reason": f"{label} was trained with tokenizer {theirs[:12] or '?'}, "
                                            f"this run uses {tokenizer_digest[:12]}"}
    return {"source": source, "checkpoint": checkpoint, "from": label}


def latest_run(lake: Lake) -> dict:
    """The record of the last finished training (``models/latest.json``)."""
    return read_json(lake.path("models", "latest.json"))


def run_record(run_dir: str | Path) -> dict:
    """The record of the finished training in ``run_dir`` (its ``run.json``, what
    ``models/latest.json`` held when it finished)."""
    record = read_json(Path(run_dir) / "run.json")
    if "checkpoint" not in record:
        raise FileNotFoundError(f"{run_dir}: the training there has not finished")
    return record


def loss_curve(uri: str, run_id: str, path: Path) -> Path | None:
    """A PNG of train loss and the training-time val bpb estimate from the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = tracking.client(uri)
    loss = sorted(c.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)
    val = sorted(c.get_metric_history(run_id, "val_bpb_estimate"), key=lambda m: m.step)
    if not loss:
        return None
    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    ax.plot([m.step for m in loss], [m.value for m in loss], label="train loss (nats/token)", lw=1)
    if val:
        ax.plot([m.step for m in val], [m.value for m in val], "o-", label="val bits/byte (estimate)", lw=1)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate_step(lake: Lake, config: EvaluationConfig | None = None, *, tracking_uri: str,
                  run: dict | None = None, **overrides) -> dict[str, float]:
    """Bits per byte and per note, baselines, validity and musical metrics of a training run
    (``run``, its record; default the latest, :func:`latest_run`) by
    :func:`musicml.evaluate.run.evaluate`; ``overrides`` are ``EvaluationConfig`` fields."""
    from musicml.evaluate.run import evaluate
    from musicml.pianorolls.steps import fractal_evaluate_step, is_fractal

    cfg = settings.merged(EvaluationConfig, config, overrides)
    if is_fractal(run := run or latest_run(lake)):
        return fractal_evaluate_step(lake, run, tracking_uri=tracking_uri, batch_size=cfg.batch_size,
                                     device=cfg.device, reference_pieces=cfg.reference_pieces)
    return evaluate(lake, cfg, tracking_uri=tracking_uri, run=run)


def samples_step(lake: Lake, config: SamplesConfig | None = None, *, tracking_uri: str, run: dict | None = None,
                 **overrides):
    """Generate, save, render and log samples for every format the model of ``run`` (a training
    record; default the latest) trained on."""
    cfg = settings.merged(SamplesConfig, config, overrides)
    per_prompt, max_new_tokens, temperature, top_k = cfg.per_prompt, cfg.max_new_tokens, cfg.temperature, cfg.top_k
    top_p, seed, device = cfg.top_p, cfg.seed, cfg.device
    from musicml.checkpoint import load_model
    from musicml.device import pick_device
    from musicml.generate import samples as samples_lib
    from musicml.pianorolls.steps import fractal_samples_step, is_fractal

    run = run or latest_run(lake)
    if is_fractal(run):
        made, summary, out_dir = fractal_samples_step(lake, run, tracking_uri=tracking_uri, per_mode=per_prompt,
                                                      seed=seed, temperature=temperature, device=device)
        return made, summary, out_dir, run
    model, _ = load_model(run["checkpoint"], device=pick_device(device))
    codec = load_codec(lake.path("tokenizer"))
    formats = shards.read_manifest(lake.path("shards")).get("formats") or ["abc"]
    out_dir = Path(run["run_dir"]) / "samples"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    generated = samples_lib.generate_samples(
        model, codec, formats, out_dir, per_prompt=per_prompt, max_new_tokens=max_new_tokens,
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    tracking.log_artifacts(tracking_uri, run["mlflow_run_id"], [out_dir], "samples")
    renderer = samples_lib.audio_renderer(generated)
    if renderer:  # which synthesizer made the audio: soundfont, or additive (the fallback)
        tracking.client(tracking_uri).set_tag(run["mlflow_run_id"], "audio_renderer", renderer)
    summary = samples_lib.summarize(generated)
    tracking.log_metrics(tracking_uri, run["mlflow_run_id"], {f"samples_{k}": v for k, v in summary.items()},
                         step=int(run["result"]["steps"]))
    return generated, summary, out_dir, run
