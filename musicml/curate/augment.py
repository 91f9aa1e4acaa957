"""Pitch-shift augmentation: each work's representative, moved by k semitones, as new text.

Which shifts a piece allows is decided with polars on the note table (pitched notes must stay
inside ``[low, high]``, the MIDI range by default; drums never move). The text of a shifted copy
is written by the format's own transposer: alphaTex re-fingers notes on the fretboard (a shift
that cannot be played is skipped and counted), ABC is re-spelled in the shifted key, MIDI text is
re-encoded from the shifted score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import symusic

from musicml.formats.native import captured_native_output

AUG_SCHEMA: dict[str, pl.DataType] = {
    "aug_id": pl.String,
    "piece_id": pl.String,
    "work_id": pl.String,
    "format": pl.String,
    "shift": pl.Int8,
    "text": pl.String,
    "text_bytes": pl.Int64,
}


@dataclass(frozen=True)
class AugmentConfig:
    min_shift: int = -3
    max_shift: int = 3
    low: int = 0
    high: int = 127
    formats: tuple[str, ...] = ("atex", "abc", "midi")
    frets: int = 24

    def shifts(self) -> list[int]:
        return [k for k in range(self.min_shift, self.max_shift + 1) if k != 0]


@dataclass
class AugmentResult:
    table: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def allowed_shifts(notes: pl.DataFrame, config: AugmentConfig) -> pl.DataFrame:
    """Per piece, the list of shifts that keep every pitched note inside ``[low, high]``."""
    ranges = notes.filter(~pl.col("is_drum")).group_by("piece_id").agg(
        pl.col("pitch").min().alias("lo"), pl.col("pitch").max().alias("hi")
    )
    shifts = pl.DataFrame({"shift": config.shifts()}, schema={"shift": pl.Int8})
    return (
        ranges.join(shifts, how="cross")
        .filter(
            (pl.col("lo") + pl.col("shift") >= config.low) & (pl.col("hi") + pl.col("shift") <= config.high)
        )
        .group_by("piece_id")
        .agg(pl.col("shift").sort())
    )


def transpose_text(fmt: str, text: str, semitones: int, *, frets: int = 24) -> str | None:
    """``text`` of format ``fmt`` moved by ``semitones``; None when it cannot be (unplayable)."""
    if fmt == "atex":
        from musicml.formats import alphatex

        result = alphatex.parse(text)
        if not result.ok:
            return None
        moved = alphatex.transpose(result.ast, semitones, frets=frets)
        return None if moved is None else alphatex.serialize(moved)
    if fmt == "abc":
        from musicml.formats.abc import transpose_tune

        with captured_native_output():
            score = symusic.Score.from_abc(text)
        return transpose_tune(text, score, semitones)
    if fmt == "midi":
        from musicml.formats import miditext

        score = miditext.decode(text)
        for track in score.tracks:
            if not track.is_drum:
                track.shift_pitch(semitones, inplace=True)
        return miditext.encode(score)
    raise ValueError(f"unknown format {fmt!r}")


def augment(
    representatives: pl.DataFrame,
    notes: pl.DataFrame,
    config: AugmentConfig = AugmentConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> AugmentResult:
    """Originals (shift 0) plus every allowed shifted copy of each representative piece."""
    reps = representatives.select("piece_id", "work_id", "format", "text").sort("piece_id")
    plan = reps.join(allowed_shifts(notes, config), on="piece_id", how="left")
    rows: list[dict] = []
    counts = {"originals": 0, "shifted": 0, "out_of_range": 0, "unplayable": 0, "failed": 0}
    n_shifts = len(config.shifts())
    total = len(plan)
    for i, (pid, wid, fmt, text, shifts) in enumerate(plan.iter_rows()):
        rows.append(_aug_row(pid, wid, fmt, 0, text))
        counts["originals"] += 1
        if fmt in config.formats and n_shifts:
            shifts = list(shifts or [])
            counts["out_of_range"] += n_shifts - len(shifts)
            for k in shifts:
                try:
                    moved = transpose_text(fmt, text, k, frets=config.frets)
                except Exception:  # a transposer bug must not lose the original
                    counts["failed"] += 1
                    continue
                if moved is None:
                    counts["unplayable"] += 1
                    continue
                rows.append(_aug_row(pid, wid, fmt, k, moved))
                counts["shifted"] += 1
        if progress:
            progress(i + 1, total)
    table = pl.DataFrame(rows, schema=AUG_SCHEMA) if rows else pl.DataFrame(schema=AUG_SCHEMA)
    return AugmentResult(table.sort("aug_id"), counts)


def _aug_row(pid: str, wid: str, fmt: str, k: int, text: str) -> dict:
    return {
        "aug_id": pid if k == 0 else f"{pid}{k:+d}",
        "piece_id": pid,
        "work_id": wid,
        "format": fmt,
        "shift": k,
        "text": text,
        "text_bytes": len(text.encode("utf-8")),
    }
