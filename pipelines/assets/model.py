"""Model assets: training (one MLflow run each), evaluation and generated samples."""


import json
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from musicml import tracking, workflow
from musicml.lake import read_json, write_json
from musicml.train import TrainConfig
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
    hidden_dim: int | None = None  # LSTM hidden size (the MIT lab's: 1024)
    embed_dim: int | None = None  # LSTM embedding size (the MIT lab's: 256)
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
        model = base.pop("model")
        if self.family != "gpt":
            model = {}
        for key in ("n_layer", "n_embd", "n_head"):
            if getattr(self, key) is not None and self.family == "gpt":
                model[key] = getattr(self, key)
        if self.family == "lstm":
            model.update({k: getattr(self, k) for k in ("hidden_dim", "embed_dim") if getattr(self, k) is not None})
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


@dg.asset(group_name=GROUP, deps=[token_shards], kinds={"pytorch", "mlflow"}, pool="gpu")
def trained_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """A training run on the token shards: checkpoints (resumable), and one MLflow run."""
    lk = lake.lake()
    uri = mlflow.uri(lk)
    cfg = config.resolve()
    tags = {"dagster.run_id": context.run.run_id, "dagster.asset_key": context.asset_key.to_user_string()}

    def log(step: int, metrics: dict) -> None:
        if step % 25 == 0 or "val_bpb" in metrics:
            context.log.info(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    launcher = pipes_launcher(context) if config.launcher == "subprocess" else workflow.inprocess_launcher(log)
    context.log.info(f"training {cfg.family} with the {config.launcher} launcher")
    run = workflow.train_step(lk, cfg, tracking_uri=uri, tags=tags, experiment=mlflow.experiment,
                              launcher=launcher, fresh=config.fresh)
    result = run.result
    metadata = {
        "mlflow_run_id": run.mlflow_run_id,
        "mlflow_url": dg.MetadataValue.url(tracking.run_url(uri, run.mlflow_run_id)),
        "run_dir": dg.MetadataValue.path(str(run.run_dir)),
        "checkpoint": dg.MetadataValue.path(run.checkpoint),
        "steps": result["steps"],
        "tokens_seen": result["tokens_seen"],
        "elapsed_s": round(result["elapsed_s"], 1),
        "train_loss": result["train_loss"],
        "val_bpb": result["val_bpb"],
        "resumed_from_step": result["resumed_from_step"],
    }
    curve = run.run_dir / "loss_curve.png"
    if curve.exists():
        metadata["loss_curve"] = image_md(curve, "loss curve")
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


def pipes_launcher(context: dg.AssetExecutionContext) -> workflow.Launcher:
    """Run training in its own process through Dagster Pipes; logs stream back into this run."""

    def launch(cfg, shard_dir: Path, run_dir: Path, bos_id: int, token_bytes: Path, uri: str, run_id: str) -> dict:
        cfg_path = run_dir / "train_config.json"
        write_json(cfg_path, cfg.to_dict())
        result_path = run_dir / "train_result.json"
        result_path.unlink(missing_ok=True)
        extras = {"config": str(cfg_path), "shards": str(shard_dir), "out": str(run_dir), "bos_id": bos_id,
                  "token_bytes": str(token_bytes), "tracking_uri": uri, "mlflow_run_id": run_id,
                  "result": str(result_path)}
        command = [sys.executable, "-m", "pipelines.train_process"]
        dg.PipesSubprocessClient().run(command=command, context=context, extras=extras).get_results()
        return read_json(result_path)

    return launch


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
    lk = lake.lake()
    metrics = workflow.evaluate_step(lk, tracking_uri=mlflow.uri(lk), max_tokens=config.max_tokens,
                                     batch_size=config.batch_size, validity_samples=config.validity_samples,
                                     max_new_tokens=config.max_new_tokens, device=config.device)
    context.log.info("evaluation: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    run = workflow.latest_run(lk)
    return dg.MaterializeResult(
        metadata={
            **{k: float(v) for k, v in metrics.items()},
            "beats_unigram": bool(metrics["val_bpb"] < metrics["unigram_val_bpb"]),
            "mlflow_run_id": run["mlflow_run_id"],
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
    lk = lake.lake()
    generated, summary, out_dir, run = workflow.samples_step(
        lk, tracking_uri=mlflow.uri(lk), per_prompt=config.per_prompt, max_new_tokens=config.max_new_tokens,
        temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, seed=config.seed,
        device=config.device)
    table = pl.DataFrame([{"name": s.name, "format": s.format, "tokens": s.tokens, "syntax_ok": s.syntax_ok,
                           "notes": s.notes, "text": s.text[:200]} for s in generated])
    metadata: dict = {"samples": len(generated), **summary, "table": md_table(table, 20, 120),
                      "folder": dg.MetadataValue.path(str(out_dir)), "mlflow_run_id": run["mlflow_run_id"]}
    first_png = next((s.files["png"] for s in generated if "png" in s.files), None)
    if first_png:
        metadata["piano_roll"] = image_md(Path(first_png), "piano roll of the first playable sample")
    context.log.info(f"{len(generated)} samples written to {out_dir}")
    return dg.MaterializeResult(metadata=metadata)
