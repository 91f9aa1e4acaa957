"""``python -m musicml.generate``: sample piano rolls from a fractal checkpoint, without Dagster.

    python -m musicml.generate --model CKPT.pt|RUN_ID --mode unconditional --steps 64 --out a.mid
    python -m musicml.generate --model CKPT.pt --mode prefix --midi in.mid --end 32 --steps 128 --out b.mid
    python -m musicml.generate --model CKPT.pt --mode inpaint --midi in.mid --start 16 --end 48 --steps 64 --out c.mid

STEP counts 16th notes from the start of the piece. ``--steps N`` is the length generated; in
``prefix`` mode the first ``--end`` steps of IN.mid are the prefix (kept unchanged); in
``inpaint`` mode ``[--start, --end)`` is regenerated and the rest of the first N steps kept.
``--render`` also writes OUT's .png, .wav and .gif (the coarse-to-fine process). ``--model``
takes a checkpoint file or an MLflow run id (its newest ``checkpoints/*.pt`` artifact, from
``--tracking-uri``, default the lake's store), or a registered model: ``models:/<name>@champion``
(:mod:`musicml.registry`). A token model (GPT, LSTM, bigram) samples ``--steps`` new tokens of
``--format`` instead, writing the text beside OUT and OUT when the text has notes:

    python -m musicml.generate --model models:/musicml-abc@champion --steps 256 --out tune.mid
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from musicml.models.fractal import FORMAT_LABELS, FractalGen

MODEL_PREFIXES = ("mlflow.db", "mlartifacts", "models", "tokenizer")  # what sampling reads of a lake


def _lake():
    """The lake (``MUSICML_LAKE``); one on object storage pulled first, as much as sampling reads."""
    from musicml.lake import Lake

    lake = Lake.from_env()
    lake.pull(MODEL_PREFIXES)
    return lake


def resolve_checkpoint(model: str, tracking_uri: str | None = None) -> Path:
    """A local checkpoint path for a file path or an MLflow run id."""
    if model.startswith(("models:/", "runs:/")):  # the Model Registry (e.g. models:/<name>@champion)
        from musicml import registry

        return registry.resolve_model(model, tracking_uri or _lake().mlflow_uri)[0]
    path = Path(model)
    if path.exists():
        return path
    from musicml import tracking

    uri = tracking_uri or _lake().mlflow_uri
    c = tracking.client(uri)
    try:
        arts = [a.path for a in c.list_artifacts(model, "checkpoints") if a.path.endswith(".pt")]
    except Exception as err:
        raise FileNotFoundError(f"{model!r} is neither a checkpoint file nor an MLflow run in {uri}: {err}") from None
    if not arts:
        raise FileNotFoundError(f"MLflow run {model} has no checkpoints/*.pt artifact")
    return Path(c.download_artifacts(model, sorted(arts)[-1]))


def load_fractal(model: str, *, tracking_uri: str | None = None, device: str = "cpu") -> FractalGen:
    from musicml.checkpoint import load_model

    net, meta = load_model(resolve_checkpoint(model, tracking_uri), device=device)
    if meta.get("family") != "fractal":
        raise ValueError(f"{model} is a {meta.get('family')!r} checkpoint; this command samples fractal models")
    return net


def known_cells(mode: str, steps: int, *, midi: str | None, start: int | None, end: int | None,
                bins: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(roll, known)`` for a mode: None for unconditional; the MIDI's first ``steps`` steps else."""
    if mode == "unconditional":
        return None, None
    if not midi:
        raise ValueError(f"--mode {mode} needs --midi")
    if end is None:
        raise ValueError(f"--mode {mode} needs --end")
    roll = midi_roll(midi, steps, bins)
    known = torch.zeros_like(roll, dtype=torch.bool)
    if mode == "prefix":
        if not 0 <= end <= steps:
            raise ValueError(f"--end {end} must be in [0, --steps {steps}]")
        known[:, :end] = True
    elif mode == "inpaint":
        if start is None or not 0 <= start < end <= steps:
            raise ValueError(f"inpaint needs 0 <= --start < --end <= --steps, got {start}, {end}, {steps}")
        known[:] = True
        known[:, start:end] = False
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return roll, known


def midi_roll(path: str, steps: int, bins: int) -> torch.Tensor:
    from musicml.pianorolls.samples import midi_to_classes

    return midi_to_classes(path, bins, steps=steps)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m musicml.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True,
                   help="checkpoint file, MLflow run id, models:/<name>@<alias> (e.g. @champion) or runs:/<id>")
    p.add_argument("--mode", choices=["unconditional", "prefix", "inpaint"], default="unconditional")
    p.add_argument("--midi", help="input MIDI for prefix / inpaint")
    p.add_argument("--start", type=int, help="inpaint: first regenerated step (16th notes)")
    p.add_argument("--end", type=int, help="prefix: prefix length; inpaint: end of the regenerated range")
    p.add_argument("--steps", type=int, required=True, help="length generated, in 16th notes")
    p.add_argument("--out", required=True, help="output .mid")
    p.add_argument("--cfg", type=float, default=1.0, help="guidance scale: 0 unconditional, 1 conditional")
    p.add_argument("--temperature", type=float, default=1.0, help="divides the logits (higher: more random)")
    p.add_argument("--sparsity-bias", type=float, default=0.0, help="added to the silence logit (>0: sparser)")
    p.add_argument("--num-iter", type=int, nargs="+", help="MAR steps per level (1 or 3 values)")
    p.add_argument("--label", default="midi", choices=sorted(FORMAT_LABELS), help="condition label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--render", action="store_true", help="also write OUT's .png, .wav and .gif")
    p.add_argument("--tracking-uri", help="MLflow store for run ids (default: the lake's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--format", help="text models: the format to sample (default: the model's first)")
    a = p.parse_args(argv)
    try:
        ckpt = resolve_checkpoint(a.model, a.tracking_uri)
        from musicml.generate import text

        if text.checkpoint_family(ckpt) in text.TEXT_FAMILIES:  # a token model: --steps new tokens
            tok = ckpt.with_name("tokenizer") if ckpt.with_name("tokenizer").is_dir() else _lake().path("tokenizer")
            print(json.dumps(text.sample_to_files(ckpt, tok, a.out, tokens=a.steps, fmt=a.format, seed=a.seed,
                                                  temperature=a.temperature, render=a.render, device=a.device)))
            return 0
        model = load_fractal(str(ckpt), tracking_uri=a.tracking_uri, device=a.device)
        bins = model.config.velocity_bins
        roll, known = known_cells(a.mode, a.steps, midi=a.midi, start=a.start, end=a.end, bins=bins)
        num_iter = None if not a.num_iter else (a.num_iter * 3 if len(a.num_iter) == 1 else a.num_iter)
        if num_iter is not None and len(num_iter) != 3:
            raise ValueError(f"--num-iter takes 1 or 3 values, got {a.num_iter}")
    except (ValueError, FileNotFoundError, NotImplementedError) as err:
        p.error(str(err))
    torch.manual_seed(a.seed)
    frames: list[torch.Tensor] = []
    out = model.sample(a.steps, batch=1, labels=torch.tensor([FORMAT_LABELS[a.label]]),
                       roll=None if roll is None else roll[None], known=None if known is None else known[None],
                       cfg=a.cfg, temperature=a.temperature, sparsity_bias=a.sparsity_bias, num_iter=num_iter,
                       on_frame=(lambda f: frames.append(f[0])) if a.render else None)[0]
    from musicml.pianorolls.samples import save_sample

    files = save_sample(out.cpu(), Path(a.out).with_suffix(""), bins=bins, frames=frames or None,
                        wav=a.render, png=a.render)
    if Path(files["midi"]) != Path(a.out):
        Path(files["midi"]).replace(a.out)
        files["midi"] = a.out
    print(json.dumps({"mode": a.mode, "steps": a.steps, "notes_cells": int((out > 0).sum()), **files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
