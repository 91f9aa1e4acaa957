"""Deduplication with polars: exact copies, re-saved copies and transposed copies become one work.

Three keys are computed per piece from the note table (ticks at 24 per quarter):

* ``text_hash``: the canonical text (exact duplicates, also across files);
* ``notes_key``: the set of (onset, pitch) of pitched notes, onsets relative to the first note
  (same notes after re-saving: other resolution, track order, velocities, meta events);
* ``shape_key``: the same with pitches relative to the lowest one (the work transposed).

Pieces sharing a ``shape_key`` (or, for pieces without notes, a ``text_hash``) are one work; the
first piece by path is its representative and the others are recorded with why they matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass
class DedupResult:
    pieces: pl.DataFrame  # every piece, with work_id, is_representative, dup_kind, dup_of
    counts: dict[str, int]

    @property
    def representatives(self) -> pl.DataFrame:
        return self.pieces.filter(pl.col("is_representative"))


def fingerprints(notes: pl.DataFrame) -> pl.DataFrame:
    """Per piece: ``notes_key`` and ``shape_key`` (u64 hashes) of its pitched notes."""
    pitched = notes.filter(~pl.col("is_drum"))
    pitched = pitched.with_columns(
        (pl.col("onset") - pl.col("onset").min().over("piece_id")).alias("rel_onset"),
        (pl.col("pitch") - pl.col("pitch").min().over("piece_id")).alias("rel_pitch"),
    )
    return (
        pitched.group_by("piece_id")
        .agg(
            (pl.col("rel_onset") * 128 + pl.col("pitch").cast(pl.Int64)).unique().sort().alias("_n"),
            (pl.col("rel_onset") * 128 + pl.col("rel_pitch").cast(pl.Int64)).unique().sort().alias("_s"),
        )
        .select(
            "piece_id",
            pl.col("_n").hash(seed=0).alias("notes_key"),
            pl.col("_s").hash(seed=0).alias("shape_key"),
        )
    )


def deduplicate(pieces: pl.DataFrame, notes: pl.DataFrame) -> DedupResult:
    """Group pieces into works; see the module docstring."""
    keyed = (
        pieces.with_columns(pl.col("text").hash(seed=0).alias("text_hash"))
        .join(fingerprints(notes), on="piece_id", how="left")
        .with_columns(
            pl.when(pl.col("shape_key").is_not_null())
            .then(pl.format("s{}", pl.col("shape_key")))
            .otherwise(pl.format("t{}", pl.col("text_hash")))
            .alias("_work_key")
        )
        .sort(["path", "index"])
    )
    first = keyed.group_by("_work_key", maintain_order=True).agg(
        pl.col("piece_id").first().alias("work_id"),
        pl.col("text_hash").first().alias("_rep_text"),
        pl.col("notes_key").first().alias("_rep_notes"),
    )
    out = keyed.join(first, on="_work_key", how="left").with_columns(
        (pl.col("piece_id") == pl.col("work_id")).alias("is_representative")
    )
    out = out.with_columns(
        pl.when(pl.col("is_representative"))
        .then(pl.lit("unique"))
        .when(pl.col("text_hash") == pl.col("_rep_text"))
        .then(pl.lit("exact"))
        .when(pl.col("notes_key") == pl.col("_rep_notes"))
        .then(pl.lit("same_notes"))
        .otherwise(pl.lit("transposed"))
        .alias("dup_kind"),
        pl.when(pl.col("is_representative")).then(None).otherwise(pl.col("work_id")).alias("dup_of"),
    ).drop("_work_key", "_rep_text", "_rep_notes")
    out = out.sort("piece_id")
    kinds = dict(out["dup_kind"].value_counts().iter_rows())
    counts = {
        "pieces": len(out),
        "works": int(out["is_representative"].sum()),
        "exact": int(kinds.get("exact", 0)),
        "same_notes": int(kinds.get("same_notes", 0)),
        "transposed": int(kinds.get("transposed", 0)),
    }
    return DedupResult(out, counts)
