"""Dense piano-roll crops from the sparse events of ``<lake>/pianorolls/`` (see ``dataset.py``).

    rolls = RollSet.load(lake.path("pianorolls"), "train")
    vel, real, labels = rolls.random_batch(16, crop=256, rng=np.random.default_rng(0))

``vel`` is ``(B, 128, crop)`` float velocity in [0, 1] (0 = silence), ``real`` ``(B, 128,
crop)`` bool (False past the end of a piece: padding), ``labels`` the format label of each
roll (:data:`musicml.models.fractal.FORMAT_LABELS`). A roll's ``shift`` is added to its
pitches here (clipped to 0..127).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from musicml.models.fractal import FORMAT_LABELS, PITCHES


@dataclass
class RollSet:
    """The rolls of one split, with their pieces' events as flat arrays."""

    rolls: pl.DataFrame  # rows of rolls.parquet
    pitch: np.ndarray
    onset: np.ndarray
    dur: np.ndarray
    velocity: np.ndarray
    start: np.ndarray  # per roll: first event row of its piece
    stop: np.ndarray

    @classmethod
    def load(cls, folder: str | Path, split: str, *, max_rolls: int | None = None) -> RollSet:
        folder = Path(folder)
        if not (folder / "rolls.parquet").exists():
            raise FileNotFoundError(f"no piano rolls in {folder} (materialize the piano_rolls asset)")
        rolls = pl.read_parquet(folder / "rolls.parquet").filter(pl.col("split") == split).sort("roll_id")
        if max_rolls is not None:
            rolls = rolls.head(max_rolls)
        events = pl.read_parquet(folder / "events.parquet").filter(
            pl.col("piece_id").is_in(rolls["piece_id"].unique().implode())).sort(["piece_id", "onset_step"])
        bounds = events.with_row_index("i").group_by("piece_id").agg(
            pl.col("i").min().alias("start"), (pl.col("i").max() + 1).alias("stop"))
        joined = rolls.join(bounds, on="piece_id", how="left")
        return cls(joined.drop("start", "stop"), events["pitch"].to_numpy().astype(np.int64),
                   events["onset_step"].to_numpy().astype(np.int64), events["dur_step"].to_numpy().astype(np.int64),
                   events["velocity"].to_numpy().astype(np.float32) / 127.0,
                   joined["start"].to_numpy().astype(np.int64), joined["stop"].to_numpy().astype(np.int64))

    def __len__(self) -> int:
        return self.rolls.height

    def label(self, i: int) -> int:
        return FORMAT_LABELS.get(self.rolls["format"][i], 0)

    def crop(self, i: int, begin: int, length: int) -> tuple[np.ndarray, np.ndarray, int]:
        """``(velocity (128, length), real (128, length), onsets in the crop)`` of roll ``i``."""
        s, e = self.start[i], self.stop[i]
        pitch = np.clip(self.pitch[s:e] + int(self.rolls["shift"][i]), 0, PITCHES - 1)
        on, off = self.onset[s:e], self.onset[s:e] + self.dur[s:e]
        keep = (off > begin) & (on < begin + length)
        pitch, on, off, vel = pitch[keep], on[keep], off[keep], self.velocity[s:e][keep]
        a, b = np.maximum(on, begin) - begin, np.minimum(off, begin + length) - begin
        n = b - a
        rows = np.repeat(pitch, n)
        cols = np.repeat(a, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        roll = np.zeros((PITCHES, length), dtype=np.float32)
        np.maximum.at(roll, (rows, cols), np.repeat(vel, n))
        real = np.zeros((PITCHES, length), dtype=bool)
        real[:, : max(0, min(length, int(self.rolls["steps"][i]) - begin))] = True
        onsets = int(((on >= begin) & (on < begin + length)).sum())
        return roll, real, onsets

    def random_batch(self, batch: int, *, crop: int, rng: np.random.Generator, align: int = 16):
        """``batch`` random crops (start a multiple of ``align`` steps) of random rolls."""
        if len(self) == 0:
            raise ValueError("no rolls in this split")
        idx = rng.integers(0, len(self), batch)
        out = [self.crop(int(i), int(rng.integers(0, max(1, (int(self.rolls["steps"][int(i)]) - crop) // align + 1)))
                         * align, crop) for i in idx]
        return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]),
                np.array([self.label(int(i)) for i in idx], dtype=np.int64))

    def windows(self, crop: int, *, max_windows: int | None = None) -> Iterator[tuple[int, int]]:
        """``(roll, begin)`` of consecutive non-overlapping crops covering every roll."""
        count = 0
        for i, steps in enumerate(self.rolls["steps"].to_list()):
            for begin in range(0, max(1, steps), crop):
                if max_windows is not None and count >= max_windows:
                    return
                yield i, begin
                count += 1
