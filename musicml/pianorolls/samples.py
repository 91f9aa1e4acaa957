"""Fractal samples as files: MIDI, piano-roll PNG, WAV, and a GIF of the coarse-to-fine process.

Class rolls (0 = silence, ``1..bins`` velocity bins) become velocity rolls (the middle of each
bin, 1..127) and then scores through :func:`musicml.pianorolls.grid.from_pianoroll` on the
16th-note grid (4 steps per quarter note, 120 BPM: a step lasts 0.125 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from symusic import Score

from musicml import render
from musicml.lake import atomic_path
from musicml.models.fractal import to_classes
from musicml.pianorolls.grid import from_pianoroll, to_pianoroll


def classes_to_velocity(classes: np.ndarray | torch.Tensor, bins: int) -> np.ndarray:
    """``uint8`` velocities (0 = silence) of a class roll: the middle of each velocity bin."""
    c = np.asarray(classes, dtype=np.float64)
    return np.where(c > 0, np.clip(np.round((c - 0.5) / bins * 127), 1, 127), 0).astype(np.uint8)


def classes_to_score(classes: np.ndarray | torch.Tensor, bins: int, *, tempo: float = 120.0) -> Score:
    return from_pianoroll(classes_to_velocity(classes, bins), grid=4, tempo=tempo)


def midi_to_classes(path: str | Path, bins: int, *, steps: int | None = None,
                    drums: bool = False) -> torch.Tensor:
    """The class roll ``(128, T)`` of a MIDI file on the 16th-note grid (``steps`` crops or pads)."""
    vel = to_pianoroll(Score(str(path)), velocity=True, drums=drums, length=steps)
    return to_classes(torch.from_numpy(vel.astype(np.float32) / 127.0), bins)


def write_gif(frames: Sequence[torch.Tensor | np.ndarray], path: str | Path, *, bins: int,
              max_frames: int = 160, scale: int = 3, duration_ms: int = 60) -> dict:
    """An animated GIF of ``(128, T)`` snapshots (-1 = not generated yet: grey), high pitches on top."""
    from PIL import Image

    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    keep = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    images = []
    for i in keep:
        f = np.asarray(frames[i])[::-1]
        rgb = np.zeros(f.shape + (3,), dtype=np.uint8)
        rgb[f < 0] = (70, 70, 70)
        v = np.clip(f, 0, bins) / bins
        on = f > 0
        rgb[on] = np.stack([255 * v[on], 160 + 95 * v[on], 40 + 0 * v[on]], -1).astype(np.uint8)
        img = Image.fromarray(rgb).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
        images.append(img.convert("P", palette=Image.ADAPTIVE))
    with atomic_path(Path(path)) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return {"path": str(path), "frames": len(images), "of_snapshots": len(frames)}


def save_sample(classes: np.ndarray | torch.Tensor, stem: str | Path, *, bins: int,
                frames: Sequence[torch.Tensor] | None = None, wav: bool = True, png: bool = True) -> dict[str, str]:
    """Write ``stem.mid`` (and ``.png``, ``.wav``, ``.gif`` with frames); returns paths by kind."""
    stem = Path(stem)
    score = classes_to_score(classes, bins)
    files = {"midi": render.write_midi(score, stem.with_suffix(".mid"))["path"]}
    if png:
        files["png"] = render.render_png(score, stem.with_suffix(".png"), title=stem.name)["path"]
    if wav:
        files["wav"] = render.render_wav(score, stem.with_suffix(".wav"), max_seconds=30)["path"]
    if frames:
        files["gif"] = write_gif(frames, stem.with_suffix(".gif"), bins=bins)["path"]
    return files
