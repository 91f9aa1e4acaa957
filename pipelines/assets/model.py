"""Model assets: training (one MLflow run each), evaluation and generated samples."""


import hashlib
import json
import shutil
import sys
from pathlib import Path

import dagster as dg
import numpy as np

from musicml import samples as samples_lib
from musicml import shards, tracking
from musicml.checkpoint import load_model
from musicml.evaluate import bits_per_byte, unigram_bpb
from musicml.lake import Lake, read_json, write_json
from musicml.tokenizers import bpe
from musicml.train import TrainConfig, TrainResult, train
from pipelines.assets.tokens import token_shards
from pipelines.metadata import image_md, md_table
from pipelines.resources import LakeResource, MlflowResource

GROUP = "model"

# Presets: the nanochat alphaTex seed run's d4 shape on a GPU; a CPU-sized model otherwise.
PRESETS: dict[str, dict] = {
    "gpu": {"depth": 4, "model": {"n_layer": 4, "n_embd": 128, "n_head": 2}, "seq_len": 512,
            "device_batch_size": 8, "total_batch_tokens": 4096, "max_steps": 1000},
    "cpu": {"depth": 2, "model": {"n_layer": 2, "n_embd": 128, "n_head": 2}, "seq_len": 256,
            "device_batch_size": 8, "total_batch_tokens": 2048, "max_steps": 300},
}


class TrainingConfig(dg.Config):
    """Training run config. Fields left at None take the device preset (gpu: d4/seq 512; cpu: smaller)."""

    family: str = "gpt"  # gpt | lstm | bigram
    preset: str = "auto"  # auto | gpu | cpu
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    hidden: int | None = None  # LSTM hidden size
    seq_len: int | None = None
    device_batch_size: int | None = None
    total_batch_tokens: int | None = None
    max_steps: int | None = None
    time_budget_s: float | None = None
    warmup_steps: int = 0
    warmdown_frac: float = 0.2
    matrix_lr: float = 0.02
    embedding_lr: float = 0.2
    unembedding_lr: float = 0.004
    lr: float = 3e-3
    eval_every: int = 100
    eval_tokens: int = 2**16
    checkpoint_every: int = 100
    keep_last: int = 2
    seed: int = 42
    device: str = "auto"
    launcher: str = "subprocess"  # subprocess (Dagster Pipes) | inprocess
    fresh: bool = False  # start over even if checkpoints of this exact run exist

    def resolve(self) -> TrainConfig:
        import torch

        preset = self.preset
        if preset == "auto":
            preset = "gpu" if torch.cuda.is_available() and self.device in ("auto", "cuda") else "cpu"
        base = json.loads(json.dumps(PRESETS[preset]))
        model = base.pop("model") if self.family == "gpt" else {}
        for key in ("n_layer", "n_embd", "n_head"):
            if getattr(self, key) is not None and self.family == "gpt":
                model[key] = getattr(self, key)
        if self.family == "lstm" and self.hidden is not None:
            model["hidden"] = self.hidden
        fields = {k: getattr(self, k) for k in ("seq_len", "device_batch_size", "total_batch_tokens", "max_steps")}
        base.update({k: v for k, v in fields.items() if v is not None})
        base.pop("depth", None)
        return TrainConfig(
            family=self.family, model=model, time_budget_s=self.time_budget_s,
            warmup_steps=self.warmup_steps, warmdown_frac=self.warmdown_frac, matrix_lr=self.matrix_lr,
            embedding_lr=self.embedding_lr, unembedding_lr=self.unembedding_lr, lr=self.lr,
            eval_every=self.eval_every, eval_tokens=self.eval_tokens, checkpoint_every=self.checkpoint_every,
            keep_last=self.keep_last, seed=self.seed, device=self.device, **base,
        )


def run_name(cfg: TrainConfig, data_digest: str) -> str:
    """Folder name of a training run: same data and config (time budget aside) → same run, resumable."""
    key = {k: v for k, v in cfg.to_dict().items() if k != "time_budget_s"}
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return f"{cfg.family}-{data_digest[:8]}-{h}"


def latest_run(lk: Lake) -> dict:
    return read_json(lk.path("models", "latest.json"))


@dg.asset(group_name=GROUP, deps=[token_shards], kinds={"pytorch", "mlflow"}, pool="gpu")
def trained_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """A training run on the token shards: checkpoints (resumable), and one MLflow run."""
    lk = lake.lake()
    uri = mlflow.uri(lk)
    shard_dir = lk.path("shards")
    manifest = shards.read_manifest(shard_dir)
    _, info = bpe.load(lk.path("tokenizer"))
    cfg = config.resolve()
    name = run_name(cfg, manifest["digest"])
    run_dir = lk.path("models", name)
    if config.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "run.json"
    state = read_json(state_path) if state_path.exists() else {}
    asset_key = context.asset_key.to_user_string()
    tags = {"dagster.run_id": context.run.run_id, "dagster.asset_key": asset_key,
            "data_digest": manifest["digest"], "tokenizer_digest": info.digest, "family": cfg.family,
            "musicml.run_dir": str(run_dir)}
    run_id = tracking.start_or_resume_run(uri, run_id=state.get("mlflow_run_id"), run_name=name, tags=tags,
                                          experiment=mlflow.experiment)
    write_json(state_path, {**state, "mlflow_run_id": run_id, "name": name})
    mcfg = cfg.model_config(info.vocab_size)
    tracking.log_params(uri, run_id, {**{f"train.{k}": v for k, v in cfg.to_dict().items()},
                                      **{f"model.{k}": v for k, v in mcfg.items() if not isinstance(v, dict)},
                                      "vocab_size": info.vocab_size, "pretokenizer": info.pretokenizer,
                                      "data_digest": manifest["digest"],
                                      "train_tokens": manifest["splits"]["train"]["tokens"]})
    if not state.get("dataset_logged"):
        tracking.log_dataset(uri, run_id, manifest, shard_dir)
        tracking.log_artifacts(uri, run_id, [lk.path("tokenizer", "tokenizer.json"),
                                             lk.path("tokenizer", "tokenizer_info.json"), shard_dir / "manifest.json"], "data")
        write_json(state_path, {**read_json(state_path), "dataset_logged": True})
    context.log.info(f"training {name} ({cfg.family}), MLflow run {run_id}, launcher {config.launcher}")
    token_bytes_path = lk.path("tokenizer", "token_bytes.npy")
    if config.launcher == "subprocess":
        result = _train_subprocess(context, cfg, shard_dir, run_dir, info.bos_id, token_bytes_path, uri, run_id)
    else:
        logger = tracking.MetricsLogger(uri, run_id)

        def log(step: int, metrics: dict) -> None:
            logger(step, metrics)
            if step % 25 == 0 or "val_bpb" in metrics:
                context.log.info(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

        result = train(cfg, shard_dir, run_dir, bos_id=info.bos_id,
                       token_bytes=np.load(token_bytes_path, allow_pickle=False), log=log)
        logger.flush()
    tracking.log_artifacts(uri, run_id, [Path(result.checkpoint)], "checkpoints")
    tracking.log_metrics(uri, run_id, {"final_train_loss": result.train_loss or float("nan")}, result.steps)
    tracking.end_run(uri, run_id)
    record = {**read_json(state_path), "checkpoint": result.checkpoint, "result": result.to_dict(),
              "train_config": cfg.to_dict(), "run_dir": str(run_dir), "data_digest": manifest["digest"]}
    write_json(state_path, record)
    write_json(lk.path("models", "latest.json"), record)
    curve = _loss_curve(uri, run_id, run_dir / "loss_curve.png")
    url = tracking.run_url(uri, run_id)
    metadata = {
        "mlflow_run_id": run_id,
        "mlflow_url": dg.MetadataValue.url(url),
        "run_dir": dg.MetadataValue.path(str(run_dir)),
        "checkpoint": dg.MetadataValue.path(result.checkpoint),
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "elapsed_s": round(result.elapsed_s, 1),
        "train_loss": result.train_loss,
        "val_bpb": result.val_bpb,
        "resumed_from_step": result.resumed_from_step,
        "data_digest": manifest["digest"],
    }
    if curve:
        metadata["loss_curve"] = image_md(curve, "loss curve")
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


def _train_subprocess(context, cfg: TrainConfig, shard_dir: Path, run_dir: Path, bos_id: int,
                      token_bytes: Path, uri: str, run_id: str) -> TrainResult:
    """Run training in its own process through Dagster Pipes; logs stream back into this run."""
    cfg_path = run_dir / "train_config.json"
    write_json(cfg_path, cfg.to_dict())
    result_path = run_dir / "train_result.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pipelines.train_process"]
    extras = {"config": str(cfg_path), "shards": str(shard_dir), "out": str(run_dir), "bos_id": bos_id,
              "token_bytes": str(token_bytes), "tracking_uri": uri, "mlflow_run_id": run_id,
              "result": str(result_path)}
    dg.PipesSubprocessClient().run(command=command, context=context, extras=extras).get_results()
    data = read_json(result_path)
    return TrainResult(**data)


def _loss_curve(uri: str, run_id: str, path: Path) -> Path | None:
    """A PNG of train loss and val bpb from the MLflow run (shown in the Dagster UI)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        c = tracking.client(uri)
        loss = c.get_metric_history(run_id, "train_loss")
        val = c.get_metric_history(run_id, "val_bpb")
        if not loss:
            return None
        fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
        ax.plot([m.step for m in loss], [m.value for m in loss], label="train loss (nats)", lw=1)
        if val:
            ax.plot([m.step for m in val], [m.value for m in val], "o-", label="val bpb", lw=1)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        return path
    except Exception:
        return None


class EvaluationConfig(dg.Config):
    max_tokens: int | None = 2**18  # target tokens per split (None: the whole split)
    batch_size: int = 8
    validity_samples: int = 8  # generated per format to measure syntax validity
    max_new_tokens: int = 384
    device: str = "auto"


@dg.asset(group_name=GROUP, deps=[trained_model], kinds={"pytorch", "mlflow"})
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """val/test bits-per-byte beside the unigram baseline, and syntax validity of generated text."""
    from musicml.device import pick_device

    lk = lake.lake()
    uri = mlflow.uri(lk)
    run = latest_run(lk)
    device = pick_device(config.device)
    model, meta = load_model(run["checkpoint"], device=device)
    tok, info = bpe.load(lk.path("tokenizer"))
    tb = bpe.load_token_bytes(lk.path("tokenizer"))
    shard_dir = lk.path("shards")
    seq_len = int(run["train_config"]["seq_len"])
    train_paths = shards.shard_paths(shard_dir, "train")
    metrics: dict[str, float] = {}
    for split, key in (("valid", "val"), ("test", "test")):
        paths = shards.shard_paths(shard_dir, split)
        metrics[f"{key}_bpb"] = bits_per_byte(model, paths, tb, seq_len=seq_len, batch_size=config.batch_size,
                                              max_tokens=config.max_tokens, device=device)
        metrics[f"unigram_{key}_bpb"] = unigram_bpb(train_paths, paths, tb)
    formats = sorted(shards.read_manifest(shard_dir).get("formats", [])) or ["abc"]
    prompts = {f: [""] for f in formats}
    generated = samples_lib.generate_samples(
        model, tok, formats, Path(run["run_dir"]) / "validity", prompts=prompts,
        per_prompt=config.validity_samples, max_new_tokens=config.max_new_tokens, render_audio=False,
    )
    metrics.update(samples_lib.summarize(generated))
    tracking.log_metrics(uri, run["mlflow_run_id"], metrics, step=int(run["result"]["steps"]))
    write_json(Path(run["run_dir"]) / "evaluation.json", metrics)
    context.log.info("evaluation: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return dg.MaterializeResult(
        metadata={
            **{k: float(v) for k, v in metrics.items()},
            "beats_unigram": bool(metrics["val_bpb"] < metrics["unigram_val_bpb"]),
            "mlflow_run_id": run["mlflow_run_id"],
            "family": meta.get("family", ""),
        }
    )


class SamplesConfig(dg.Config):
    per_prompt: int = 2
    max_new_tokens: int = 512
    temperature: float = 0.9
    top_k: int | None = 50
    top_p: float | None = None
    seed: int = 0
    device: str = "auto"


@dg.asset(group_name=GROUP, deps=[model_evaluation], kinds={"pytorch", "mlflow"})
def generated_samples(
    context: dg.AssetExecutionContext, config: SamplesConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """Samples from empty and header prompts per format: text, MIDI, piano-roll PNG, WAV; logged to MLflow."""
    from musicml.device import pick_device

    lk = lake.lake()
    uri = mlflow.uri(lk)
    run = latest_run(lk)
    model, _ = load_model(run["checkpoint"], device=pick_device(config.device))
    tok, _ = bpe.load(lk.path("tokenizer"))
    formats = sorted(shards.read_manifest(lk.path("shards")).get("formats", [])) or ["abc"]
    out_dir = Path(run["run_dir"]) / "samples"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    generated = samples_lib.generate_samples(
        model, tok, formats, out_dir, per_prompt=config.per_prompt, max_new_tokens=config.max_new_tokens,
        temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, seed=config.seed,
    )
    tracking.log_artifacts(uri, run["mlflow_run_id"], [out_dir], "samples")
    summary = samples_lib.summarize(generated)
    import polars as pl

    table = pl.DataFrame([{"name": s.name, "format": s.format, "tokens": s.tokens, "syntax_ok": s.syntax_ok,
                           "notes": s.notes, "text": s.text[:200]} for s in generated])
    metadata: dict = {"samples": len(generated), **summary, "table": md_table(table, 20, 120),
                      "folder": dg.MetadataValue.path(str(out_dir)), "mlflow_run_id": run["mlflow_run_id"]}
    first_png = next((s.files["png"] for s in generated if "png" in s.files), None)
    if first_png:
        metadata["piano_roll"] = image_md(Path(first_png), "piano roll of the first playable sample")
    context.log.info(f"{len(generated)} samples written to {out_dir}")
    return dg.MaterializeResult(metadata=metadata)
