"""The fractal model's steps of the asset graph (called from :mod:`musicml.workflow`).

``piano_rolls_step`` builds the sparse rolls; ``fractal_train_step`` trains with one MLflow run
(resumed when cut off) and writes ``models/latest.json`` like every family, with
``"family": "fractal"``; ``fractal_evaluate_step`` and ``fractal_samples_step`` are what
``evaluate_step`` / ``samples_step`` run for such a run.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import torch

from musicml import tracking
from musicml.lake import Lake, read_json, sha256_file, write_json
from musicml.pianorolls.dataset import PianoRollConfig, build_piano_rolls
from musicml.pianorolls.train import (
    FractalTrainConfig,
    baseline_bits,
    class_frequencies,
    evaluate_rolls,
)


def piano_rolls_step(lake: Lake, config: PianoRollConfig = PianoRollConfig()) -> dict:
    return build_piano_rolls(lake, config)


def rolls_digest(lake: Lake) -> str:
    folder = lake.path("pianorolls")
    h = hashlib.sha256()
    for name in ("events.parquet", "rolls.parquet"):
        h.update(sha256_file(folder / name).encode())
    return h.hexdigest()


def as_fractal_config(cfg) -> FractalTrainConfig:
    """A :class:`FractalTrainConfig` from itself or from a ``TrainConfig`` with ``family='fractal'``
    (its ``model`` dict may hold ``preset``; steps, batch, schedule and checkpoint fields carry over)."""
    if isinstance(cfg, FractalTrainConfig):
        return cfg
    model = dict(cfg.model)
    preset = model.pop("preset", "auto")
    return FractalTrainConfig(preset=preset, model=model, batch_size=cfg.device_batch_size,
                              max_steps=cfg.max_steps, time_budget_s=cfg.time_budget_s,
                              warmup_steps=cfg.warmup_steps or FractalTrainConfig.warmup_steps,
                              eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every,
                              keep_last=cfg.keep_last, seed=cfg.seed, device=cfg.device)


def fractal_train_step(lake: Lake, cfg, *, tracking_uri: str, tags: dict[str, str] | None = None,
                       experiment: str = tracking.DEFAULT_EXPERIMENT, fresh: bool = False):
    """Train the fractal model on ``<lake>/pianorolls`` in this process; a ``TrainingRun``."""
    from musicml.device import pick_device
    from musicml.pianorolls.train import train_fractal
    from musicml.workflow import TrainingRun, open_run_dir, run_name

    fcfg = as_fractal_config(cfg)
    rolls_dir = lake.path("pianorolls")
    digest = rolls_digest(lake)
    name = run_name(fcfg, digest)
    run_dir, state_path, state = open_run_dir(lake, name, fresh)
    run_id = tracking.start_or_resume_run(
        tracking_uri, run_id=state.get("mlflow_run_id"), run_name=name, experiment=experiment,
        tags={"data_digest": digest, "family": "fractal", "musicml.run_dir": str(run_dir), **(tags or {})})
    state.update({"mlflow_run_id": run_id, "name": name})
    write_json(state_path, state)
    summary = read_json(rolls_dir / "summary.json")
    tracking.log_params(tracking_uri, run_id, {
        **{f"train.{k}": v for k, v in fcfg.to_dict().items()},
        **{f"model.{k}": v for k, v in fcfg.model_config(pick_device(fcfg.device)).to_dict().items()},
        "data_digest": digest, "train_rolls": summary["splits"].get("train", {}).get("rolls", 0)})
    if not state.get("dataset_logged"):
        tracking.log_artifacts(tracking_uri, run_id, [rolls_dir / "summary.json"], "data")
        state["dataset_logged"] = True
        write_json(state_path, state)
    logger = tracking.MetricsLogger(tracking_uri, run_id, flush_at=fcfg.checkpoint_every)
    try:
        try:
            with tracking.system_metrics(tracking_uri, run_id):
                result = train_fractal(fcfg, rolls_dir, run_dir, log=logger)
        finally:
            logger.flush()
    except BaseException:
        tracking.end_run(tracking_uri, run_id, "KILLED")  # resumable: checkpoints stay in run_dir
        raise
    tracking.log_artifacts(tracking_uri, run_id, [Path(result["checkpoint"])], "checkpoints")
    tracking.end_run(tracking_uri, run_id)
    record = {**state, "family": "fractal", "checkpoint": result["checkpoint"], "result": result,
              "train_config": fcfg.to_dict(), "run_dir": str(run_dir), "data_digest": digest}
    write_json(state_path, record)
    write_json(lake.path("models", "latest.json"), record)
    from musicml.workflow import loss_curve

    if curve := loss_curve(tracking_uri, run_id, run_dir / "loss_curve.png"):
        tracking.log_artifacts(tracking_uri, run_id, [curve], "plots")
    return TrainingRun(name, run_dir, run_id, result, result["checkpoint"])


def is_fractal(run: dict) -> bool:
    return run.get("family") == "fractal" or run.get("train_config", {}).get("family") == "fractal"


def fractal_evaluate_step(lake: Lake, run: dict, *, tracking_uri: str, max_windows: int | None = None,
                          batch_size: int = 8, samples: int = 4, device: str = "auto",
                          reference_pieces: int = 500) -> dict[str, float]:
    """``val_bpn`` / ``test_bpn`` and bits per cell (``val_bpc``, ...), beside the marginal
    (silence-dominated) baseline's ``baseline_val_bpn`` / ``baseline_val_bpc``, over the first
    ``max_windows`` crops of each split (None: all); musical metrics of ``samples`` unconditional
    samples against the test split when the lake has token shards to define it."""
    from musicml.checkpoint import load_model
    from musicml.device import pick_device
    from musicml.pianorolls.loader import RollSet
    from musicml.pianorolls.samples import classes_to_score

    dev = pick_device(device)
    model, _ = load_model(run["checkpoint"], device=dev)
    bins, crop = model.config.velocity_bins, model.config.roll_len
    rolls_dir = lake.path("pianorolls")
    freq = class_frequencies(RollSet.load(rolls_dir, "train"), bins, crop)
    metrics: dict[str, float] = {}
    for split, key in (("valid", "val"), ("test", "test")):
        rolls = RollSet.load(rolls_dir, split)
        if len(rolls) == 0:
            continue
        m = evaluate_rolls(model, rolls, max_windows=max_windows, batch_size=batch_size, device=dev)
        b = baseline_bits(freq, rolls, bins, crop, max_windows=max_windows)
        metrics.update({f"{key}_bpn": m["bpn"], f"{key}_bpc": m["bpc"], f"{key}_notes": m["onsets"],
                        f"{key}_cells": m["cells"], f"baseline_{key}_bpn": b["bpn"], f"baseline_{key}_bpc": b["bpc"]})
    if samples:
        torch.manual_seed(0)
        rolls = model.sample(crop, batch=samples, labels=torch.ones(samples, dtype=torch.long))
        scores = [classes_to_score(r.cpu(), bins) for r in rolls]
        metrics["samples_notes_per_roll"] = sum(s.note_num() for s in scores) / samples
        if lake.path("shards", "manifest.json").exists():
            from musicml.evaluate.run import musical_figures

            metrics.update(musical_figures(lake, scores, reference_pieces))
    metrics = {k: float(v) for k, v in sorted(metrics.items()) if v is not None and math.isfinite(v)}
    tracking.log_metrics(tracking_uri, run["mlflow_run_id"], metrics, step=int(run["result"]["steps"]))
    write_json(Path(run["run_dir"]) / "evaluation.json", metrics)
    return metrics


def fractal_samples_step(lake: Lake, run: dict, *, tracking_uri: str, per_mode: int = 2, seed: int = 0,
                         cfg: float = 1.0, temperature: float = 1.0, sparsity_bias: float = 0.0,
                         device: str = "auto") -> tuple[list, dict, Path]:
    """Unconditional, prefix and inpainting samples (the latter two from test rolls), each as
    MIDI, PNG, WAV and a GIF of the coarse-to-fine process, as ``generate.samples.Sample`` rows
    (``prompt`` = the mode, ``tokens`` = sounding cells); logged to the run's ``samples``."""
    from musicml.checkpoint import load_model
    from musicml.device import pick_device
    from musicml.generate.samples import Sample
    from musicml.models.fractal import to_classes
    from musicml.pianorolls.loader import RollSet
    from musicml.pianorolls.samples import classes_to_score, save_sample

    model, _ = load_model(run["checkpoint"], device=pick_device(device))
    bins, steps = model.config.velocity_bins, model.config.roll_len
    out_dir = Path(run["run_dir"]) / "samples"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    rolls = RollSet.load(lake.path("pianorolls"), "test")
    if len(rolls) == 0:
        rolls = RollSet.load(lake.path("pianorolls"), "train")
    made: list[dict] = []
    torch.manual_seed(seed)
    for mode in ("unconditional", "prefix", "inpaint"):
        for i in range(per_mode):
            roll = known = None
            if mode != "unconditional":
                vel, real, _ = rolls.crop(i % len(rolls), 0, steps)
                roll = to_classes(torch.from_numpy(vel), bins)[None]
                known = torch.zeros_like(roll, dtype=torch.bool)
                if mode == "prefix":
                    known[..., : steps // 2] = True
                else:
                    known[:] = True
                    known[..., steps // 4: 3 * steps // 4] = False
            frames: list[torch.Tensor] = []
            out = model.sample(steps, batch=1, labels=torch.ones(1, dtype=torch.long), roll=roll, known=known,
                               cfg=cfg, temperature=temperature, sparsity_bias=sparsity_bias,
                               on_frame=lambda f, frames=frames: frames.append(f[0]))[0].cpu()
            name = f"{mode}_{i}"
            files = save_sample(out, out_dir / name, bins=bins, frames=frames)
            notes = classes_to_score(out, bins).note_num()
            made.append(Sample(name=name, format="midi", prompt=mode, text="", tokens=int((out > 0).sum()),
                               syntax_ok=True, musical_ok=None, notes=int(notes), files=files))
    tracking.log_artifacts(tracking_uri, run["mlflow_run_id"], [out_dir], "samples")
    summary = {"samples": len(made), "mean_cells_on": sum(m.tokens for m in made) / max(1, len(made)),
               "mean_notes": sum(m.notes for m in made) / max(1, len(made))}
    tracking.log_metrics(tracking_uri, run["mlflow_run_id"], {f"samples_{k}": v for k, v in summary.items()},
                         step=int(run["result"]["steps"]))
    return made, summary, out_dir
