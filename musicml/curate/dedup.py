"""Deduplication with polars: exact copies, re-saved copies and transposed copies become one work.

Three keys are computed per piece from the note table (ticks at 24 per quarter):

* ``text_hash``: the canonical text (exact duplicates, also across files);
* ``notes_key``: the set of (onset, pitch) of pitched notes, onsets relative to the first note
  (same notes after re-saving: other resolution, track order, velocities, meta events);
* ``shape_key``: the same with pitches relative to the lowest one (the work transposed).

Pieces sharing a ``shape_key`` (or, for pieces without notes, a ``text_hash``) are one work; the
first piece by path is its representative and the others are recorded with why they matched.

A work's ``work_id`` is a SHA-256 digest of what its members share (the sorted shape of their
notes, or the text of a piece without notes), so it depends only on the work's own content:
adding files, even ones that sort first or duplicate an existing work, never changes an
existing work's id, and so never moves it between splits (:mod:`musicml.curate.splits` hashes
the id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

WORK_ID_HEX = 20  # hex digits of the SHA-256 digest kept in a work id (80 bits)


@dataclass
class DedupResult:
    pieces: pl.DataFrame  # every piece, with work_id, is_representative, dup_kind, dup_of
    counts: dict[str, int]

    @property
    def representatives(self) -> pl.DataFrame:
        return self.pieces.filter(pl.col("is_representative"))


def _digests(lists: pl.Series) -> list[str]:
    """SHA-256 (hex, ``WORK_ID_HEX`` digits) of each list of int64 values, as little-endian bytes."""
    flat = lists.explode().to_numpy().astype("<i8", copy=False)
    ends = np.cumsum(lists.list.len().to_numpy())
    starts = ends - lists.list.len().to_numpy()
    return [hashlib.sha256(flat[a:b].tobytes()).hexdigest()[:WORK_ID_HEX] for a, b in zip(starts, ends)]


def fingerprints(notes: pl.DataFrame) -> pl.DataFrame:
    """Per piece: ``notes_key`` and ``shape_key`` (u64 hashes) of its pitched notes, and
    ``shape_digest``, a SHA-256 of the shape that does not depend on the polars version."""
    pitched = notes.filter(~pl.col("is_drum"))
    pitched = pitched.with_columns(
        (pl.col("onset") - pl.col("onset").min().over("piece_id")).alias("rel_onset"),
        (pl.col("pitch") - pl.col("pitch").min().over("piece_id")).alias("rel_pitch"),
    )
    keys = pitched.group_by("piece_id").agg(
        (pl.col("rel_onset") * 128 + pl.col("pitch").cast(pl.Int64)).unique().sort().alias("_n"),
        (pl.col("rel_onset") * 128 + pl.col("rel_pitch").cast(pl.Int64)).unique().sort().alias("_s"),
    )
    return keys.select(
        "piece_id",
        pl.col("_n").hash(seed=0).alias("notes_key"),
        pl.col("_s").hash(seed=0).alias("shape_key"),
        pl.Series("shape_digest", _digests(keys["_s"]), dtype=pl.String),
    )


def deduplicate(pieces: pl.DataFrame, notes: pl.DataFrame) -> DedupResult:
    """Group pieces into works; see the module docstring."""
    text_digests = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:WORK_ID_HEX] for t in pieces["text"]]
    keyed = (
        pieces.with_columns(pl.col("text").hash(seed=0).alias("text_hash"),
                            pl.Series("_text_digest", text_digests, dtype=pl.String))
        .join(fingerprints(notes), on="piece_id", how="left")
        .with_columns(
            pl.when(pl.col("shape_digest").is_not_null())
            .then(pl.format("s{}", pl.col("shape_digest")))
            .otherwise(pl.format("t{}", pl.col("_text_digest")))
            .alias("work_id")
        )
        .drop("shape_digest", "_text_digest")
        .sort(["path", "index"])
    )
    first = keyed.group_by("work_id", maintain_order=True).agg(
        pl.col("piece_id").first().alias("_rep"),
        pl.col("text_hash").first().alias("_rep_text"),
        pl.col("notes_key").first().alias("_rep_notes"),
    )
    out = keyed.join(first, on="work_id", how="left").with_columns(
        (pl.col("piece_id") == pl.col("_rep")).alias("is_representative")
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
        pl.when(pl.col("is_representative")).then(None).otherwise(pl.col("_rep")).alias("dup_of"),
    ).drop("_rep", "_rep_text", "_rep_notes")
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
