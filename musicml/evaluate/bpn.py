"""Bits per note: the one scale across representations (MIDI text, REMI, ABC, alphaTex, rolls).

bits per note = total negative log-likelihood in bits of a split / note onsets of that split.

* The NLL is summed over the same target positions as bits per byte (:func:`split_nll`: every
  content token of every document once; BOS and format tokens, which carry no music, are left
  out), over the **whole** split: a capped pass would score part of the documents whose notes
  are counted, so bits per note is only defined for ``max_tokens=None``.
* Notes are counted the same way for every representation: the note onsets (rows of the note
  table, i.e. notes of the symusic score) of the piece each of the split's documents was made
  from. A pitch-shifted copy has its original's notes (shifts that would drop a note are not
  made); a document converted to another format (MIDI guitar parts written as alphaTex) is
  counted from its own text's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from musicml.evaluate.bpb import SplitNLL
from musicml.ingest import parsed
from musicml.lake import Lake


def bits_per_note(nll: SplitNLL, notes: int) -> float:
    """``nll`` in bits divided by ``notes`` (NaN without notes)."""
    return nll.bits / notes if notes > 0 else float("nan")


def shard_doc_ids(shard_paths: Sequence[str | Path]) -> list[str]:
    """The ``doc_id`` of every document of the shards, in order."""
    return [d for p in shard_paths for d in pq.read_table(p, columns=["doc_id"]).column("doc_id").to_pylist()]


def document_notes(lake: Lake, doc_ids: Sequence[str]) -> pl.DataFrame:
    """``doc_id``, ``notes`` for every document id (an ``aug_id`` of the augmented table)."""
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"), columns=["aug_id", "piece_id", "format", "text"])
    pieces = parsed.read_pieces(lake, ["piece_id", "format"])
    counts = parsed.scan_notes(lake).group_by("piece_id").len("notes").collect()
    docs = (pl.DataFrame({"doc_id": list(doc_ids)}, schema={"doc_id": pl.String})
            .join(aug.rename({"aug_id": "doc_id"}), on="doc_id", how="left")
            .join(pieces.rename({"format": "piece_format"}), on="piece_id", how="left")
            .join(counts, on="piece_id", how="left"))
    missing = docs.filter(pl.col("piece_id").is_null())["doc_id"].to_list()
    if missing:
        raise ValueError(f"{len(missing)} shard documents are not in the augmented table "
                         f"(first: {missing[0]!r}): shards and lake are out of step")
    converted = pl.col("format") != pl.col("piece_format")
    own = [_text_notes(f, t) for f, t in docs.filter(converted).select("format", "text").iter_rows()]
    own_counts = dict(zip(docs.filter(converted)["doc_id"].to_list(), own))
    return docs.select(
        "doc_id",
        pl.when(converted).then(pl.col("doc_id").replace_strict(own_counts, default=0, return_dtype=pl.Int64))
        .otherwise(pl.col("notes").fill_null(0)).cast(pl.Int64).alias("notes"),
    )


def split_notes(lake: Lake, shard_paths: Sequence[str | Path]) -> int:
    """Note onsets of the pieces the documents of these shards were made from."""
    return int(document_notes(lake, shard_doc_ids(shard_paths))["notes"].sum())


def _text_notes(fmt: str, text: str) -> int:
    from musicml.evaluate.validity import check

    score = check(fmt, text).score
    return int(score.note_num()) if score is not None else 0
