"""The lake's parsed tables (asset ``parsed_scores``): ``parsed/pieces.parquet`` and the note table.

The note table is a set of parquet parts in ``parsed/notes/``, listed by ``parsed/notes/manifest.json``:
each part is the notes of one parse cache batch (:mod:`musicml.ingest.files`), written by the
ingestion worker that parsed the batch's files, so that the table is written on every core and
publishing it moves no note. A batch whose pieces all belong to the lake now is published as its
cache file itself (a hard link: no copy; a copy where the file system has no links); one holding
pieces of files since removed, or held by another batch too, is published as a part of only the
notes that belong. Where many small parts pile up (each small ingestion, such as the sensor's,
makes a batch of its own), they are merged into one (:func:`_merge_small`), so readers open few
files and a publication rewrites a bounded number of notes. Parts are named by what they hold, never change once written, and are read only
through the manifest (:func:`notes_paths`, :func:`read_notes`, :func:`scan_notes`; DuckDB's ``notes``
view, refreshed here): the manifest is replaced atomically, and the parts of the previous one are
kept (a reader may still be reading them), older ones removed. Every piece's notes are in one
part, in the note table's order (onset, pitch, track); the parts are in the order of their names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from musicml.ingest.files import (
    PIECE_SCHEMA,
    CachedBatch,
    pieces_frame,
    read_part,
    select_parsed,
    write_notes_part,
)
from musicml.ingest.note_table import NOTE_SCHEMA
from musicml.lake import Lake, atomic_path, read_json, safe_join, write_json, write_parquet
from musicml.locks import file_lock

MANIFEST = "manifest.json"
# How ``pieces.parquet`` is written (pyarrow.parquet.write_table options). Measured on POP909 and
# its versions (2,873 pieces, 58 MB of MIDI text; CPU of the write, of polars' read, size), 2026-12-03:
# the text uncompressed, every other column lz4 (these) 33 ms, 22 ms, 58.2 MB; everything lz4 94 ms,
# 34 ms, 16.1 MB; snappy 90 ms, 41 ms, 16.4 MB; zstd (level 1) 126 ms, 50 ms, 9.5 MB. The text is
# most of it, and compressing it is what costs: it is read once (``deduped_scores``), whose tables
# onward are compressed. No dictionary of the text (every text differs) and no statistics of it (a
# min and max of long strings); statistics of ``piece_id`` (what readers filter by).
PIECES_PARQUET = {"compression": {c: "none" if c == "text" else "lz4" for c in PIECE_SCHEMA},
                  "use_dictionary": ["format", "time_signature"], "write_statistics": ["piece_id"]}
# Small parts are merged (see _merge_small): a part of fewer notes than this is small, and more
# than MAX_SMALL_PARTS small ones become one. A batch of 64 POP909 files holds ~100k notes; one
# ingestion of a few new files (the sensor's) makes a batch of its own.
SMALL_PART_ROWS = 65_536
MAX_SMALL_PARTS = 8
_EMPTY_PART = "empty.parquet"  # the one part of a table of no notes (DuckDB reads no empty file list)


@dataclass(frozen=True)
class PublishedNotes:
    """The note table as :func:`publish` left it."""

    paths: list[Path]  # its parts, in order
    rows: int  # notes
    linked: int  # parts newly published as their cache file
    written: int  # parts newly written (of a batch's notes that belong, or small parts merged)
    merged: int  # parts that are merges of small ones


def notes_dir(lake: Lake) -> Path:
    return lake.dir("parsed", "notes")


def pieces_path(lake: Lake) -> Path:
    return lake.path("parsed", "pieces.parquet")


def publish(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, PublishedNotes]:
    """Write the parsed tables of every ``ingested`` file of ``files`` (the files table) from the
    parse cache: the pieces (paths as they are now) and the note table's parts and manifest;
    the pieces and what the note table is."""
    with file_lock(lake.path("parsed", "publish.lock")):  # two at once take turns (one removes what it replaced)
        return _publish(lake, files)


def _publish(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, PublishedNotes]:
    selection = select_parsed(lake, files)
    write_parquet(pieces_path(lake), selection.pieces, **PIECES_PARQUET)
    folder = notes_dir(lake)
    own = {_part_name(b): b for b in selection.batches if b.chosen}  # each batch's own part
    previous = _read_manifest(folder)
    groups = {m: members for m, members in previous.get("merged", {}).items()  # merges still whole
              if set(members) <= set(own) and (folder / m).exists()}
    free = set(own) - {n for members in groups.values() for n in members}
    groups, free, merged = _merge_small(folder, own, groups, free)
    linked = written = 0
    for name in free:
        made = _make_part(own[name], folder / name)
        linked += made == "linked"
        written += made == "written"
    names = sorted([*free, *groups])
    if not names:
        names.append(_EMPTY_PART)
        if not (folder / _EMPTY_PART).exists():
            write_notes_part(folder / _EMPTY_PART, pl.DataFrame(schema=NOTE_SCHEMA))
    rows = sum(b.chosen_rows for b in own.values())
    write_json(folder / MANIFEST, {"parts": names, "rows": rows, "pieces": len(selection.pieces),
                                   "merged": {m: groups[m] for m in sorted(groups)}})
    _remove_unlisted(folder, set(names) | set(previous.get("parts", [])))
    # the one-file note table of lakes written before the parts (PARSER_VERSION 5): gone, not stale
    lake.path("parsed", "notes.parquet").unlink(missing_ok=True)
    if lake.catalog_path.exists():  # its notes view names the parts: now these
        from musicml import catalog  # (here: the catalog imports this module)

        catalog.refresh(lake)
    return pieces_frame(selection.pieces), PublishedNotes([folder / n for n in names], rows, linked,
                                                          written + merged, len(groups))


def _merge_small(folder: Path, own: dict[str, CachedBatch], groups: dict[str, list[str]], free: set[str]
                 ) -> tuple[dict[str, list[str]], set[str], int]:
    """Where more than :data:`MAX_SMALL_PARTS` parts hold fewer than :data:`SMALL_PART_ROWS` notes
    each (as many small ingestions leave, one batch each), those become one part written anew:
    ``(groups, free, parts written)``. A merge is kept while every part in it is (its name lists
    them in the manifest); one whose files changed is taken apart again. So a publication rewrites
    at most about ``MAX_SMALL_PARTS * SMALL_PART_ROWS`` notes, and readers open few files."""
    def rows(name: str) -> int:
        return sum(own[n].chosen_rows for n in groups.get(name, [name]))

    small = sorted(n for n in [*free, *groups] if rows(n) < SMALL_PART_ROWS)
    if len(small) <= MAX_SMALL_PARTS:
        return groups, free, 0
    members = sorted(m for n in small for m in groups.pop(n, [n]))
    free = free - set(small)
    name = f"m-{hashlib.sha256(chr(10).join(members).encode()).hexdigest()[:32]}.parquet"
    groups[name] = members
    if (folder / name).exists():
        return groups, free, 0
    write_notes_part(folder / name, pl.concat([read_part(own[m]) for m in members]))
    return groups, free, 1


def _part_name(batch: CachedBatch) -> str:
    """A batch's own part: named by the batch, and by the pieces taken from it where not all."""
    stem = batch.notes_path.name.split(".")[0]
    if batch.whole:
        return f"{stem}.parquet"
    return f"{stem}-{hashlib.sha256(chr(10).join(sorted(batch.chosen)).encode()).hexdigest()[:16]}.parquet"


def _make_part(batch: CachedBatch, path: Path) -> str:
    """``path``, a batch's own part, made unless it is there: "linked" (the cache's file),
    "written" (the notes that belong) or "kept"."""
    if batch.whole:
        if _same_file(path, batch.notes_path):  # (a batch parsed again is a new file)
            return "kept"
        _link_or_copy(batch.notes_path, path)
        return "linked"
    if path.exists():
        return "kept"
    write_notes_part(path, read_part(batch))
    return "written"


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (one file on disk), a copy where linking fails
    (another file system, or one without links); atomic either way."""
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read_manifest(folder: Path) -> dict:
    """The manifest as the last publication wrote it (``{}`` where there is none or it is unreadable)."""
    try:
        manifest = read_json(folder / MANIFEST)
        parts, merged = list(manifest["parts"]), dict(manifest.get("merged", {}))
        return {"parts": [str(p) for p in parts], "merged": {str(m): [str(n) for n in v] for m, v in merged.items()}}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.name != MANIFEST and path.name not in keep and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def notes_paths(lake: Lake) -> list[Path]:
    """The parts of the lake's note table, in order; ``FileNotFoundError`` when it has none
    (``parsed_scores`` has not run)."""
    folder = lake.path("parsed", "notes")
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"no note table: {manifest} is missing (materialize parsed_scores)")
    return [safe_join(folder, name) for name in read_json(manifest)["parts"]]


_UPCAST = pl.ScanCastOptions(integer_cast="upcast")  # the parts' int32 times (and older parts' int64) as int64


def scan_notes(lake: Lake) -> pl.LazyFrame:
    """The lake's note table (``NOTE_SCHEMA``: the parts' int32 times read as int64), lazily."""
    return pl.scan_parquet(notes_paths(lake), schema=NOTE_SCHEMA, cast_options=_UPCAST)


def read_notes(lake: Lake, columns: list[str] | None = None) -> pl.DataFrame:
    """The lake's note table (``NOTE_SCHEMA``, or ``columns`` of it)."""
    frame = scan_notes(lake)
    return (frame.select(columns) if columns else frame).collect()

