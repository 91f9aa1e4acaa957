"""The parse cache's on-disk notes (since PARSER_VERSION 6: each batch's notes a parquet part of
the lake's note table, ``piece_id`` dictionary encoded) read back as the note table parsing the
files directly gives: NOTE_SCHEMA's types, every note, each piece's notes under its piece id, as
many rows as the batch's pieces count notes (what publishing a part checks from its footer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from musicml.ingest import IngestConfig, ingest, load_parsed
from musicml.ingest.files import (
    NOTES_SUFFIX,
    PARSER_VERSION,
    PIECE_SCHEMA,
    PIECES_SUFFIX,
    parse_bytes,
    piece_id,
)
from musicml.ingest.note_table import (
    NOTE_PART_SCHEMA,
    NOTE_SCHEMA,
    note_arrays,
    notes_frame_from_arrays,
)
from musicml.lake import Lake


def _reference(lake: Lake, files: pl.DataFrame) -> pl.DataFrame:
    """The note table of every ingested file, parsed here and built in memory (no cache)."""
    parts = []
    for rel, fmt, digest in files.filter(pl.col("status") == "ingested").unique("content_hash").select(
            "path", "format", "content_hash").iter_rows():
        parsed = parse_bytes((lake.raw_dir / rel).read_bytes(), fmt, rel)
        parts += [(piece_id(digest, p.index), note_arrays(p.score)) for p in parsed.pieces]
    return notes_frame_from_arrays(parts)


def test_cached_notes_equal_the_parsed_note_table(tmp_path: Path, derived) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    lake.raw_dir.mkdir(parents=True)
    for p in (derived.big_abc, derived.band, *derived.midi[:3], *derived.multitrack[:2]):
        shutil.copyfile(p, lake.raw_dir / p.name)
    shutil.copyfile(derived.band, lake.raw_dir / "band-copy.mid")  # a duplicate: read once
    result = ingest(lake, IngestConfig(isolate=False))
    pieces, notes = load_parsed(lake, result.files)
    assert PARSER_VERSION == "8" and (result.files["parser_version"] == "8").all()
    assert pieces.schema == pl.Schema(PIECE_SCHEMA) and notes.schema == pl.Schema(NOTE_SCHEMA)
    assert len(pieces) > 128  # the big ABC file: piece indices past int8
    want = _reference(lake, result.files)
    assert len(want) > 10_000 and want["is_drum"].any()
    every = list(NOTE_SCHEMA)
    assert notes.sort(every).equals(want.sort(every))
    assert notes["piece_id"].is_sorted()
    assert set(notes["piece_id"].unique()) <= set(pieces["piece_id"])

    stored = [pq.ParquetFile(p) for p in lake.root.rglob(f"*{NOTES_SUFFIX}")]
    assert stored and all(f.schema_arrow.names == list(NOTE_SCHEMA) for f in stored)
    for f in stored:  # no string per note: the piece ids are a dictionary page
        assert "RLE_DICTIONARY" in f.metadata.row_group(0).column(0).encodings
        assert pl.from_arrow(f.read()).schema == pl.Schema(NOTE_PART_SCHEMA)  # times as int32; readers get int64
    assert sum(f.metadata.num_rows for f in stored) == pieces["n_notes"].sum() == len(notes)
    batches = [pq.ParquetFile(p) for p in lake.root.rglob(f"*{PIECES_SUFFIX}")]  # the pieces: parquet parts too
    assert sum(f.metadata.num_rows for f in batches) == len(pieces)
    for f in batches:
        assert pl.from_arrow(f.read()).schema == pl.Schema(PIECE_SCHEMA)
        text = f.metadata.row_group(0).column(list(PIECE_SCHEMA).index("text"))
        assert text.compression == "UNCOMPRESSED" and not text.is_stats_set  # (PIECES_PARQUET)
