"""Training and evaluation of the fractal piano-roll model (family ``fractal``).

    cfg = FractalTrainConfig(preset="tiny", max_steps=300)
    result = train_fractal(cfg, lake.path("pianorolls"), "runs/f1", log=print)

Each step draws ``batch_size`` random crops of ``roll_len`` steps from the train split (the
crops and the model's masks are seeded by ``(seed, step)``, so a resumed run sees exactly what
an uninterrupted one would), minimizes the mean cross-entropy over the real cells the levels
masked, and logs ``train_loss`` (nats per scored cell), per-level ``level{k}_mask_ratio`` /
``level{k}_units``, ``cells_per_s`` and ``cells_seen``; every ``eval_every`` steps ``val_bpc``
and ``val_bpn`` on the first ``eval_windows`` validation crops. Checkpoints (``step_*.pt`` via
:mod:`musicml.checkpoint`, read back with ``weights_only=True``, plus ``model_config.json``)
go to ``out_dir/checkpoints``; a run restarts from the newest one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from musicml import checkpoint as ckpt
from musicml.device import pick_device
from musicml.lake import write_json
from musicml.models.fractal import FractalConfig, FractalGen, count_parameters, to_classes
from musicml.pianorolls.loader import RollSet

LN2 = math.log(2)


@dataclass
class FractalTrainConfig:
    family: str = "fractal"
    preset: str = "auto"  # auto (gpu on CUDA, else tiny) | tiny | gpu
    model: dict = field(default_factory=dict)  # overrides of the preset's FractalConfig
    batch_size: int = 16
    max_steps: int = 300
    time_budget_s: float | None = None  # wall-clock cap of this invocation (checkpoints, stops)
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup_steps: int = 20
    grad_clip: float = 1.0
    eval_every: int = 100  # 0: only at the end
    eval_windows: int = 16  # validation crops per periodic evaluation
    checkpoint_every: int = 100  # 0: only at the end
    keep_last: int = 2
    seed: int = 42
    device: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FractalTrainConfig:
        if unknown := set(d) - {f.name for f in fields(cls)}:
            raise ValueError(f"unknown FractalTrainConfig keys: {sorted(unknown)}")
        return cls(**d)

    def model_config(self, device: str | torch.device = "cpu") -> FractalConfig:
        preset = self.preset
        if preset == "auto":
            preset = "gpu" if torch.device(device).type == "cuda" else "tiny"
        return FractalConfig.preset(preset, **self.model)


def _batch(rolls: RollSet, n: int, crop: int, rng: np.random.Generator, bins: int, device):
    vel, real, labels = rolls.random_batch(n, crop=crop, rng=rng)
    return (to_classes(torch.from_numpy(vel), bins).to(device), torch.from_numpy(real).to(device),
            torch.from_numpy(labels).to(device))


@torch.no_grad()
def evaluate_rolls(model: FractalGen, rolls: RollSet, *, max_windows: int | None = 64, batch_size: int = 8,
                   seed: int = 0, device: str | torch.device = "cpu") -> dict[str, float]:
    """Teacher-forced NLL over consecutive crops of every roll of ``rolls``.

    Returns ``bits`` (total), ``cells`` (real cells), ``onsets`` (notes starting in the crops),
    ``bpc`` (bits per real cell) and ``bpn`` (bits per note onset)."""
    was_training = model.training
    model.eval()
    crop, bins = model.config.roll_len, model.config.velocity_bins
    gen = torch.random.fork_rng(devices=[] if torch.device(device).type == "cpu" else [torch.device(device)])
    bits = cells = onsets = 0.0
    with gen:
        torch.manual_seed(seed)
        windows = list(rolls.windows(crop, max_windows=max_windows))
        for i in range(0, len(windows), batch_size):
            part = [rolls.crop(r, b, crop) for r, b in windows[i: i + batch_size]]
            vel = torch.from_numpy(np.stack([p[0] for p in part]))
            real = torch.from_numpy(np.stack([p[1] for p in part])).to(device)
            labels = torch.tensor([rolls.label(r) for r, _ in windows[i: i + batch_size]], device=device)
            nats = model.nll(to_classes(vel, bins).to(device), real, labels)
            bits += float(nats.sum()) / LN2
            cells += float(real.sum())
            onsets += sum(p[2] for p in part)
    model.train(was_training)
    return {"bits": bits, "cells": cells, "onsets": onsets, "bpc": bits / max(cells, 1.0),
            "bpn": bits / max(onsets, 1.0)}


def class_frequencies(rolls: RollSet, bins: int, crop: int, *, max_windows: int = 512) -> np.ndarray:
    """Class frequencies over the real cells of ``rolls`` (add-one smoothed)."""
    counts = np.ones(bins + 1)
    for r, b in rolls.windows(crop, max_windows=max_windows):
        vel, real, _ = rolls.crop(r, b, crop)
        counts += np.bincount(to_classes(torch.from_numpy(vel[real]), bins).numpy(), minlength=bins + 1)
    return counts / counts.sum()


def baseline_bits(freq: np.ndarray, rolls: RollSet, bins: int, crop: int, *,
                  max_windows: int | None = 64) -> dict[str, float]:
    """The silence-dominated marginal baseline: every cell drawn i.i.d. from ``freq``."""
    bits = cells = onsets = 0.0
    logf = -np.log2(freq)
    for r, b in rolls.windows(crop, max_windows=max_windows):
        vel, real, n = rolls.crop(r, b, crop)
        cls = to_classes(torch.from_numpy(vel[real]), bins).numpy()
        bits += float(logf[cls].sum())
        cells += float(real.sum())
        onsets += n
    return {"bits": bits, "cells": cells, "onsets": onsets, "bpc": bits / max(cells, 1.0),
            "bpn": bits / max(onsets, 1.0)}


def train_fractal(cfg: FractalTrainConfig, rolls_dir: str | Path, out_dir: str | Path, *,
                  log: Callable[[int, dict], None] | None = None) -> dict:
    """Train (or resume) a fractal model on the piano rolls in ``rolls_dir``; returns a result dict
    (``checkpoint, steps, tokens_seen`` (cells), ``elapsed_s, train_loss, val_bpc, val_bpn,
    resumed_from_step, parameters``)."""
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    device = pick_device(cfg.device)
    mcfg = cfg.model_config(device)
    train_set = RollSet.load(rolls_dir, "train")
    val_set = RollSet.load(rolls_dir, "valid")
    if len(train_set) == 0:
        raise ValueError(f"no train rolls in {rolls_dir}")
    torch.manual_seed(cfg.seed)
    model = FractalGen(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    step, cells_seen, resumed = 0, 0, None
    if (latest := ckpt.latest_checkpoint(ckpt_dir)) is not None:
        state = ckpt.load(latest, map_location=device)
        if state.get("model_config") != mcfg.to_dict():
            raise ValueError(f"checkpoint {latest} has another model config; pass fresh to start over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizers"][0])
        step = resumed = int(state["step"])
        cells_seen = int(state["tokens_seen"])
    write_json(ckpt_dir / "model_config.json", {"family": "fractal", "model_config": mcfg.to_dict()})
    emit = log or (lambda s, m: None)
    emit(step, {"parameters": count_parameters(model)})

    def val() -> dict | None:
        if len(val_set) == 0:
            return None
        return evaluate_rolls(model, val_set, max_windows=cfg.eval_windows, seed=cfg.seed, device=device)

    def save(train_loss: float | None) -> Path:
        path = ckpt.save({"family": "fractal", "model_config": mcfg.to_dict(), "model": model.state_dict(),
                          "optimizers": [opt.state_dict()], "step": step, "tokens_seen": cells_seen,
                          "train_config": cfg.to_dict(), "train_loss": train_loss},
                         ckpt_dir / ckpt.checkpoint_name(step))
        ckpt.prune(ckpt_dir, cfg.keep_last)
        return path

    t0 = time.time()
    train_loss, last_val, path, saved = None, None, latest, step
    model.train()
    while step < cfg.max_steps:
        if cfg.time_budget_s is not None and time.time() - t0 > cfg.time_budget_s:
            break
        ts = time.time()
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        roll, real, labels = _batch(train_set, cfg.batch_size, mcfg.roll_len, rng, mcfg.velocity_bins, device)
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        lr *= 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.max_steps)))  # cosine decay
        for g in opt.param_groups:
            g["lr"] = lr
        out = model(roll, real, labels)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        cells_seen += int(real.sum())
        train_loss = float(out["loss"].detach())
        metrics = {"train_loss": train_loss, "lr": lr, "cells_seen": cells_seen,
                   "cells_per_s": float(real.sum()) / max(time.time() - ts, 1e-9),
                   **{k: float(v) for k, v in out.items() if k.startswith("level")}}
        if cfg.eval_every and step % cfg.eval_every == 0 and (last_val := val()):
            metrics.update(val_bpc=last_val["bpc"], val_bpn=last_val["bpn"])
        emit(step, metrics)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            path, saved = save(train_loss), step
    if path is None or saved != step:
        if step and (not cfg.eval_every or step % cfg.eval_every) and (last_val := val()):
            emit(step, {"val_bpc": last_val["bpc"], "val_bpn": last_val["bpn"]})
        path = save(train_loss)
    return {"checkpoint": str(path), "steps": step, "tokens_seen": cells_seen, "elapsed_s": time.time() - t0,
            "train_loss": train_loss, "val_bpb": None, "val_bpc": last_val["bpc"] if last_val else None,
            "val_bpn": last_val["bpn"] if last_val else None, "resumed_from_step": resumed,
            "parameters": count_parameters(model)}
