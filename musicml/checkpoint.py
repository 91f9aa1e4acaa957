"""Checkpoints: written atomically (temporary name, then rename), read only with
``torch.load(weights_only=True)`` so loading never executes code. Everything stored is a
tensor, a plain dict/list, a number or a string (RNG states are stored as tensors).

A training checkpoint holds: ``family``, ``model_config`` (dict), ``model`` (state dict),
``optimizers`` (list of state dicts), ``step``, ``tokens_seen``, ``data_position`` (dict),
``rng`` (dict of tensors), ``train_config`` (dict) and anything else the caller adds.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from musicml.lake import atomic_path

STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.pt"


def save(obj: dict, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint without executing code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every ``step_NNNNNN.pt`` in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := STEP_RE.match(p.name))]
    return sorted(found)


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune(ckpt_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; returns the deleted paths."""
    if keep_last <= 0:
        return []
    old = [p for _, p in list_checkpoints(ckpt_dir)[:-keep_last]]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def rng_state() -> dict:
    """torch / numpy / python / cuda RNG states, as tensors."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_state[4]], dtype=torch.float64),
        "python": torch.tensor(list(py_internal), dtype=torch.int64),
        "python_meta": torch.tensor([py_version], dtype=torch.int64),
    }
    if py_gauss is not None:
        state["python_gauss"] = torch.tensor([py_gauss], dtype=torch.float64)
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    meta = state["numpy_meta"].tolist()
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), int(meta[0]),
                         int(meta[1]), float(state["numpy_gauss"][0])))
    gauss = float(state["python_gauss"][0]) if "python_gauss" in state else None
    random.setstate((int(state["python_meta"][0]), tuple(int(v) for v in state["python"]), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = list(state["cuda"].cpu())
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """``(model, meta)`` from a checkpoint: the model rebuilt from its stored family and config,
    in eval mode on ``device``; meta is the checkpoint without the model and optimizer states."""
    from musicml.models import build_model

    ckpt = load(path, map_location=device)
    model = build_model(ckpt["family"], ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizers", "rng")}
    return model, meta
