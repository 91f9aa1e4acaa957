"""Sampling a text model (GPT / LSTM / bigram) for ``python -m musicml.generate``.

The fractal CLI hands over to :func:`sample_to_files` when ``--model`` resolves to a checkpoint
of a token model (``models:/<name>@champion`` usually does): ``--steps`` new tokens after the
format's BOS and format token, the text written beside OUT, and OUT (MIDI) when it has notes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from musicml import checkpoint

TEXT_FAMILIES = ("gpt", "lstm", "bigram")


def checkpoint_family(path: str | Path) -> str:
    """The model family a checkpoint holds (``torch.load(weights_only=True)``)."""
    return str(checkpoint.load(path).get("family", ""))


def model_formats(ckpt: Path) -> list[str]:
    """The formats of a registered model (its ``config.json`` beside the checkpoint); else abc."""
    cfg = Path(ckpt).with_name("config.json")
    return list(json.loads(cfg.read_text()).get("formats") or ["abc"]) if cfg.is_file() else ["abc"]


def sample_to_files(ckpt: Path, tokenizer_dir: Path, out: str | Path, *, tokens: int, fmt: str | None = None,
                    seed: int = 0, temperature: float = 0.9, render: bool = False, device: str = "cpu") -> dict:
    """One sample of ``tokens`` new tokens; its text (and MIDI at ``out`` when it has notes).
    Returns what was written, for the CLI's JSON line."""
    from musicml.checkpoint import load_model
    from musicml.generate.samples import generate_samples
    from musicml.tokenizers import load_codec

    if tokens < 1:
        raise ValueError(f"--steps (new tokens) must be at least 1, got {tokens}")
    formats = model_formats(ckpt)
    fmt = fmt or formats[0]
    if fmt not in formats:
        raise ValueError(f"format {fmt!r}: this model was trained on {formats}")
    if not (Path(tokenizer_dir) / "tokenizer_info.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir}: no tokenizer for this text model")
    model, meta = load_model(ckpt, device=device)
    codec = load_codec(Path(tokenizer_dir))
    out = Path(out)
    work = out.with_name(out.stem + "_sample")
    [sample] = generate_samples(model, codec, [fmt], work, prompts={fmt: [""]}, per_prompt=1,
                                max_new_tokens=tokens, temperature=temperature, seed=seed, render_audio=render)
    files = {k: v for k, v in sample.files.items()}
    if "midi" in files:
        shutil.copyfile(files["midi"], out)
        files["midi"] = str(out)
    return {"family": meta.get("family"), "format": fmt, "tokens": sample.tokens, "syntax_ok": sample.syntax_ok,
            "notes": sample.notes, **files}
