"""Model assets: training (one MLflow run each), evaluation and generated samples."""


import sys
from pathlib import Path

import dagster as dg
import polars as pl

from musicml import tracking, workflow
from musicml.evaluate import config as evaluate_config
from musicml.generate import config as generate_config
from musicml.lake import read_json, write_json
from musicml.train.config import PRESETS, TrainConfig, describe_presets, preset_config
from pipelines import pools
from pipelines.assets.pianorolls import piano_rolls
from pipelines.assets.tokens import token_shards
from pipelines.config import dagster_config
from pipelines.metadata import image_md, md_table
from pipelines.resources import LakeResource, MlflowResource
from pipelines.retries import retry_transient

GROUP = "model"
PRESET_FIELDS = sorted({key for values in PRESETS.values() for key in values})  # left at None: the preset's

_TrainingFields = dagster_config(
    TrainConfig, name="TrainingConfig", optional=PRESET_FIELDS,
    optional_note=f"(default: the preset's, else the TrainConfig default; presets: {describe_presets()})",
    extra={"preset": (str, "auto", "training preset: auto (gpu with CUDA, else cpu) | " + " | ".join(PRESETS)),
           "launcher": (str, "subprocess", "subprocess (Dagster Pipes) | inprocess"),
           "fresh": (bool, False, "start over even if checkpoints of this exact run exist")})


class TrainingConfig(_TrainingFields):
    """Training run config: ``musicml.train.TrainConfig``'s fields; those a preset sets default to it."""

    def resolve(self) -> TrainConfig:
        """The defaults, then the preset, then the fields given here."""
        return preset_config(self.preset, **self.library_fields())


@dg.asset(group_name=GROUP, deps=[token_shards, piano_rolls], kinds={"pytorch", "mlflow"}, pool=pools.GPU)
def trained_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """A training run on the token shards: checkpoints (resumable), and one MLflow run."""
    lk = lake.lake()
    uri = mlflow.uri(lk)
    cfg = config.resolve()
    tags = {"dagster.run_id": context.run.run_id, "dagster.asset_key": context.asset_key.to_user_string()}

    def log(step: int, metrics: dict) -> None:
        if step % 25 == 0 or "val_bpb_estimate" in metrics:
            context.log.info(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    launcher = pipes_launcher(context) if config.launcher == "subprocess" else workflow.inprocess_launcher(log)
    context.log.info(f"training {cfg.family} with the {config.launcher} launcher")
    with retry_transient(context):  # a busy MLflow store: the retry resumes from the last checkpoint
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
        "val_bpb_estimate": result["val_bpb"],
        "resumed_from_step": result["resumed_from_step"],
        "warm_started_from": result.get("warm_started_from") or "none",
    }
    curve = run.run_dir / "loss_curve.png"
    if curve.exists():
        metadata["loss_curve"] = image_md(curve, "loss curve")
    return dg.MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


def training_of_this_run(context: dg.AssetExecutionContext, lake) -> dict:
    """The record of the training this Dagster run materialized (``trained_model``'s ``run_dir``),
    so that two runs at once on one lake each evaluate, sample and register their own model; the
    lake's latest training when this run trained nothing (a re-evaluation)."""
    events = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in reversed(events):
        mat = record.event_log_entry.asset_materialization
        if mat is not None and mat.asset_key == trained_model.key and "run_dir" in mat.metadata:
            return workflow.run_record(mat.metadata["run_dir"].value)
    return workflow.latest_run(lake)


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


EvaluationConfig = dagster_config(evaluate_config.EvaluationConfig, name="EvaluationConfig")


@dg.asset(group_name=GROUP, deps=[trained_model], kinds={"pytorch", "mlflow"})
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """val/test bits per byte and per note beside the unigram baseline, validity rates and musical
    metrics of generated samples: the figures of ``evaluation.json``, as logged to MLflow."""
    from musicml.evaluate.run import musical_table

    lk = lake.lake()
    run = training_of_this_run(context, lk)
    with retry_transient(context):
        metrics = workflow.evaluate_step(lk, config.build(), tracking_uri=mlflow.uri(lk), run=run)
    context.log.info("evaluation: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    table = pl.DataFrame(musical_table(metrics), schema_overrides={
        k: pl.Float64 for k in ("generated_mean", "test_mean", "oa_generated_vs_test", "oa_valid_vs_test")})
    return dg.MaterializeResult(
        metadata={
            **metrics,
            "beats_unigram": bool(metrics["val_bpb"] < metrics["unigram_val_bpb"]),
            "musical_metrics": md_table(table.with_columns(pl.col(pl.Float64).round(4)), 20),
            "mlflow_run_id": run["mlflow_run_id"],
        }
    )


SamplesConfig = dagster_config(generate_config.SamplesConfig, name="SamplesConfig")


@dg.asset(group_name=GROUP, deps=[model_evaluation], kinds={"pytorch", "mlflow"})
def generated_samples(
    context: dg.AssetExecutionContext, config: SamplesConfig, lake: LakeResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    """Samples from empty and header prompts per format: text, MIDI, piano-roll PNG, WAV; logged to MLflow."""
    from musicml.generate import samples as samples_lib

    lk = lake.lake()
    with retry_transient(context):
        generated, summary, out_dir, run = workflow.samples_step(lk, config.build(), tracking_uri=mlflow.uri(lk),
                                                                 run=training_of_this_run(context, lk))
    table = pl.DataFrame([{"name": s.name, "format": s.format, "tokens": s.tokens, "syntax_ok": s.syntax_ok,
                           "notes": s.notes, "audio": s.audio.get("synth"), "seconds": s.audio.get("duration_seconds"),
                           "text": s.text[:200]} for s in generated])
    metadata: dict = {"samples": len(generated), **summary, "table": md_table(table, 20, 120),
                      "folder": dg.MetadataValue.path(str(out_dir)), "mlflow_run_id": run["mlflow_run_id"],
                      "audio_renderer": samples_lib.audio_renderer(generated) or "none"}
    first = next((s for s in generated if "png" in s.files), None)
    if first:
        metadata["piano_roll"] = image_md(Path(first.files["png"]), f"piano roll of {first.name}")
        metadata["first_sample"] = first.name
        for kind in ("wav", "midi"):
            if kind in first.files:
                metadata[f"first_sample_{kind}"] = dg.MetadataValue.path(first.files[kind])
    context.log.info(f"{len(generated)} samples written to {out_dir}")
    return dg.MaterializeResult(metadata=metadata)
