"""The ``piano_rolls`` asset's data: every augmented row with notes as sparse note events.

``build_piano_rolls(lake, config)`` reads the lake's parsed notes (any format: MIDI, ABC and
alphaTex all have note tables) and the augmented/splits tables, and writes under
``<lake>/pianorolls/``:

- ``events.parquet``: one row per note of each piece, unshifted, on a true 16th-note grid
  (``piece_id, pitch, onset_step, dur_step, velocity``; 4 steps per quarter note whatever the
  tempo; onsets and ends rounded to the grid, at least one step long); drums left out unless
  ``include_drums``;
- ``rolls.parquet``: one row per roll (an augmented copy): ``roll_id`` (the aug_id),
  ``piece_id, work_id, format, split, shift, steps, notes``. The loader adds ``shift`` to the
  pitches, so the pitch-shifted copies cost no disk. Eval splits keep only shift 0 unless
  ``augment_eval_splits``, as the token shards do.

Rolls stay sparse on disk; :mod:`musicml.pianorolls.loader` densifies crops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from musicml.ingest import parsed
from musicml.ingest.note_table import TPQ
from musicml.lake import Lake, write_json, write_parquet

STEPS_PER_QUARTER = 4  # 16th notes
EVENT_SCHEMA = {"piece_id": pl.String, "pitch": pl.Int16, "onset_step": pl.Int32, "dur_step": pl.Int32,
                "velocity": pl.Int16}
ROLL_SCHEMA = {"roll_id": pl.String, "piece_id": pl.String, "work_id": pl.String, "format": pl.String,
               "split": pl.String, "shift": pl.Int8, "steps": pl.Int32, "notes": pl.Int32}


@dataclass(frozen=True)
class PianoRollConfig:
    include_drums: bool = False
    augment_eval_splits: bool = False  # also the shifted copies of valid/test pieces
    min_notes: int = 1  # pieces with fewer (pitched) notes are left out

    def to_dict(self) -> dict:
        return asdict(self)


def note_events(notes: pl.DataFrame, *, include_drums: bool = False, tpq: int = TPQ) -> pl.DataFrame:
    """Sparse 16th-note events of a note table (ticks at ``tpq`` per quarter)."""
    if not include_drums:
        notes = notes.filter(~pl.col("is_drum"))
    per = tpq // STEPS_PER_QUARTER
    if tpq % STEPS_PER_QUARTER:
        raise ValueError(f"ticks per quarter {tpq} is not a multiple of {STEPS_PER_QUARTER}")
    on = (pl.col("onset") * 2 + per) // (2 * per)  # round half up, like the MIDI text quantizer
    end = ((pl.col("onset") + pl.col("duration")) * 2 + per) // (2 * per)
    return (
        notes.select("piece_id", pl.col("pitch"), on.alias("onset_step"), end.alias("end"), "velocity")
        .with_columns((pl.col("end") - pl.col("onset_step")).clip(lower_bound=1).alias("dur_step"))
        .select("piece_id", "pitch", "onset_step", "dur_step", pl.col("velocity").clip(1, 127))
        .unique(["piece_id", "pitch", "onset_step"], keep="first", maintain_order=True)  # one onset per cell
        .cast(EVENT_SCHEMA)
        .sort(["piece_id", "onset_step", "pitch"])
    )


def build_piano_rolls(lake: Lake, config: PianoRollConfig = PianoRollConfig()) -> dict:
    """Write ``pianorolls/events.parquet`` and ``rolls.parquet``; returns counts per split."""
    notes = parsed.read_notes(lake)
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"), columns=["aug_id", "piece_id", "work_id",
                                                                              "format", "shift"])
    splits = pl.read_parquet(lake.path("curated", "splits.parquet")).filter(pl.col("kind") == "augmented")
    rows = aug.join(splits.select(pl.col("row_id").alias("aug_id"), "split"), on="aug_id", how="inner")
    if not config.augment_eval_splits:
        rows = rows.filter((pl.col("split") == "train") | (pl.col("shift") == 0))
    # a MIDI piece also written as alphaTex (midi_to_atex) has the same notes: one roll per (piece, shift)
    rows = rows.sort("aug_id").unique(["piece_id", "shift"], keep="first", maintain_order=True)
    events = note_events(notes.filter(pl.col("piece_id").is_in(rows["piece_id"].unique().implode())),
                         include_drums=config.include_drums)
    per_piece = events.group_by("piece_id").agg(
        (pl.col("onset_step") + pl.col("dur_step")).max().alias("steps"), pl.len().alias("notes"))
    per_piece = per_piece.filter(pl.col("notes") >= config.min_notes)
    rolls = (rows.join(per_piece, on="piece_id", how="inner")
             .select(pl.col("aug_id").alias("roll_id"), "piece_id", "work_id", "format", "split", "shift",
                     "steps", "notes")
             .cast(ROLL_SCHEMA).sort("roll_id"))
    events = events.filter(pl.col("piece_id").is_in(rolls["piece_id"].unique().implode()))
    out = lake.dir("pianorolls")
    write_parquet(out / "events.parquet", events)
    write_parquet(out / "rolls.parquet", rolls)
    summary = {
        "config": config.to_dict(),
        "events": events.height,
        "pieces": per_piece.height,
        "splits": {r["split"]: {"rolls": r["rolls"], "steps": r["steps"], "notes": r["notes"]}
                   for r in rolls.group_by("split").agg(pl.len().alias("rolls"), pl.col("steps").sum(),
                                                         pl.col("notes").sum()).iter_rows(named=True)},
    }
    write_json(out / "summary.json", summary)
    return summary
