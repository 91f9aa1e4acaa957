"""The lake's parsed tables (asset ``parsed_scores``): the pieces table and the note table.

Each is a set of parquet parts, ``parsed/pieces/`` (``PIECE_SCHEMA``: one row per piece with its
training text) and ``parsed/notes/`` (``NOTE_SCHEMA``), each listed by its ``manifest.json``. A
part is the pieces or the notes of one parse cache batch (:mod:`musicml.ingest.files`), written by
the ingestion worker that parsed the batch's files, so that the tables are written on every core
and publishing them moves no note and no text. A batch whose pieces all belong to the lake now is
published as its cache files themselves (hard links: no copy; a copy where the file system has no
links); one holding pieces of files since removed, or held by another batch too, is published as
parts of only the rows that belong, and the pieces of files moved since are written anew with
their paths as they are now. Where many small parts pile up (each small ingestion, such as the
sensor's, makes a batch of its own), they are merged into one (:func:`_merge_small`, the same
batches in both tables), so readers open few files and a publication rewrites a bounded number of
rows. Parts are named by what they hold, never change once written, and are read only through the
manifests (:func:`pieces_paths`, :func:`read_pieces`, :func:`scan_pieces`, :func:`notes_paths`,
:func:`read_notes`, :func:`scan_notes`; DuckDB's ``pieces`` and ``notes`` views, refreshed here):
a manifest is replaced atomically, and the parts of the previous one are kept (a reader may still
be reading them), older ones removed. Every piece's notes are in one part, in the note table's
order (onset, pitch, track); the parts are in the order of their names, and :func:`read_pieces`
sorts the pieces by id and path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from musicml.ingest.files import (
    PIECE_SCHEMA,
    CachedBatch,
    read_part,
    read_pieces_part,
    select_parsed,
    write_notes_part,
    write_pieces_part,
)
from musicml.ingest.note_table import NOTE_SCHEMA
from musicml.lake import Lake, atomic_path, read_json, safe_join, write_json
from musicml.locks import file_lock

MANIFEST = "manifest.json"
# Small parts are merged (see _merge_small): a batch of fewer notes than this is small, and more
# than MAX_SMALL_PARTS small ones become one. A batch of BATCH_FILES (128) POP909 files holds ~200k
# notes; one ingestion of a few new files (the sensor's) makes a batch of its own.
SMALL_PART_ROWS = 65_536
MAX_SMALL_PARTS = 8
_EMPTY_PART = "empty.parquet"  # the one part of a table of no rows (DuckDB reads no empty file list)


@dataclass(frozen=True)
class _Table:
    """How one of the parsed tables is made of the cache's batches."""

    name: str  # its folder under parsed/
    schema: dict[str, pl.DataType]
    cache_file: Callable[[CachedBatch], Path]  # a batch's file of this table
    linkable: Callable[[CachedBatch], bool]  # whether that file is the table's part as it is
    read: Callable[[CachedBatch], pl.DataFrame]  # the rows of a batch's chosen pieces
    write: Callable[[Path, pl.DataFrame], None]
    count: Callable[[CachedBatch], int]  # rows of a batch's chosen pieces


PIECES = _Table("pieces", PIECE_SCHEMA, lambda b: b.pieces_path, lambda b: b.whole_pieces, read_pieces_part,
                write_pieces_part, lambda b: len(b.paths))
NOTES = _Table("notes", NOTE_SCHEMA, lambda b: b.notes_path, lambda b: b.whole, read_part,
               write_notes_part, lambda b: b.chosen_rows)
TABLES = (PIECES, NOTES)


@dataclass(frozen=True)
class PublishedTable:
    """A parsed table (the note table, or the pieces table) as :func:`publish` left it."""

    paths: list[Path]  # its parts, in order
    rows: int  # notes (pieces)
    linked: int  # parts newly published as their cache file
    written: int  # parts newly written (of a batch's rows that belong, or small parts merged)
    merged: int  # parts that are merges of small ones


def publish(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, PublishedTable]:
    """Write the parsed tables of every ``ingested`` file of ``files`` (the files table) from the
    parse cache: the pieces table's and the note table's parts and manifests; the pieces (their
    key columns, no text: ``ParsedSelection.pieces``) and what the note table is."""
    with file_lock(lake.path("parsed", "publish.lock")):  # two at once take turns (one removes what it replaced)
        pieces, published = _publish(lake, files)
    return pieces, published["notes"]


def _publish(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, PublishedTable]]:
    """:func:`publish`'s work (under its lock); what each table is, by name."""
    folders = {t.name: lake.dir("parsed", t.name) for t in TABLES}
    previous = {t.name: _read_manifest(folders[t.name]) for t in TABLES}

    def published(batch: CachedBatch) -> bool:
        """Whether the batch's files are the lake's parts already, unchanged since the last
        publication recorded them (their footers were checked when first published): so a
        publication reads no footer of the batches it keeps, only their ``stat``."""
        name = _part_name(batch)
        for t in TABLES:
            seen = previous[t.name]["stat"].get(name)  # (recorded only of parts that exist)
            if not t.linkable(batch) or seen is None or not seen == _identity(folders[t.name] / name) == \
                    _identity(t.cache_file(batch)):
                return False
        return True

    selection = select_parsed(lake, files, trusted=published)
    own = {_part_name(b): b for b in selection.batches if b.chosen}  # each batch's own part
    groups = {m: members for m, members in previous["notes"].get("merged", {}).items()  # merges still whole
              if set(members) <= set(own) and all((f / m).exists() for f in folders.values())}
    free = set(own) - {n for members in groups.values() for n in members}
    groups, free = _merge_small(own, groups, free)
    names = sorted([*free, *groups]) or [_EMPTY_PART]
    published = {}
    for table in TABLES:
        folder = folders[table.name]
        linked = written = merged = 0
        for name in free:
            made = _make_part(table, own[name], folder / name)
            linked += made == "linked"
            written += made == "written"
        for name, members in groups.items():
            if not (folder / name).exists():
                table.write(folder / name, pl.concat([table.read(own[m]) for m in members]))
                merged += 1
        if names == [_EMPTY_PART] and not (folder / _EMPTY_PART).exists():
            table.write(folder / _EMPTY_PART, pl.DataFrame(schema=table.schema))
        rows = sum(table.count(b) for b in own.values())
        write_json(folder / MANIFEST, {"parts": names, "rows": rows, "pieces": len(selection.pieces),
                                       "merged": {m: groups[m] for m in sorted(groups)},
                                       "stat": {n: _identity(folder / n) for n in names}})
        _remove_unlisted(folder, set(names) | set(previous[table.name].get("parts", [])))
        published[table.name] = PublishedTable([folder / n for n in names], rows, linked, written + merged,
                                               len(groups))
    for legacy in ("notes.parquet", "pieces.parquet"):  # the one-file tables of lakes written before the parts
        lake.path("parsed", legacy).unlink(missing_ok=True)
    if lake.catalog_path.exists():  # its views name the parts: now these
        from musicml import catalog  # (here: the catalog imports this module)

        catalog.refresh(lake)
    return pl.from_arrow(selection.pieces).cast({c: PIECE_SCHEMA[c] for c in selection.pieces.column_names}), published


def _merge_small(own: dict[str, CachedBatch], groups: dict[str, list[str]], free: set[str]
                 ) -> tuple[dict[str, list[str]], set[str]]:
    """Where more than :data:`MAX_SMALL_PARTS` parts hold the notes of fewer than
    :data:`SMALL_PART_ROWS` notes each (as many small ingestions leave, one batch each), those
    become one part in each table, written anew: ``(groups, free)``.
    A merge is kept while every part in it is (its name lists them in the manifests); one whose
    files changed is taken apart again. So a publication rewrites at most about
    ``MAX_SMALL_PARTS * SMALL_PART_ROWS`` notes (and their pieces), and readers open few files."""
    def rows(name: str) -> int:
        return sum(own[n].chosen_rows for n in groups.get(name, [name]))

    small = sorted(n for n in [*free, *groups] if rows(n) < SMALL_PART_ROWS)
    if len(small) <= MAX_SMALL_PARTS:
        return groups, free
    members = sorted(m for n in small for m in groups.pop(n, [n]))
    free = free - set(small)
    name = f"m-{hashlib.sha256(chr(10).join(members).encode()).hexdigest()[:32]}.parquet"
    groups[name] = members
    return groups, free


def _part_name(batch: CachedBatch) -> str:
    """A batch's own part (the same name in both tables): named by the batch, and by the pieces
    taken from it and their paths where not all, or where their files moved."""
    stem = batch.notes_path.name.split(".")[0]
    if batch.whole_pieces:
        return f"{stem}.parquet"
    taken = chr(10).join(f"{pid}{chr(0)}{path}" for pid, path in sorted(batch.paths))
    return f"{stem}-{hashlib.sha256(taken.encode()).hexdigest()[:16]}.parquet"


def _make_part(table: _Table, batch: CachedBatch, path: Path) -> str:
    """``path``, a batch's own part of ``table``, made unless it is there: "linked" (the cache's
    file), "written" (the rows that belong) or "kept"."""
    if table.linkable(batch):
        if _same_file(path, table.cache_file(batch)):  # (a batch parsed again is a new file)
            return "kept"
        _link_or_copy(table.cache_file(batch), path)
        return "linked"
    if path.exists():
        return "kept"
    table.write(path, table.read(batch))
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
    """The manifest as the last publication wrote it (nothing where there is none or it is unreadable)."""
    try:
        manifest = read_json(folder / MANIFEST)
        parts, merged = list(manifest["parts"]), dict(manifest.get("merged", {}))
        stat = {str(n): [int(x) for x in v] for n, v in dict(manifest.get("stat", {})).items() if v is not None}
        return {"parts": [str(p) for p in parts], "merged": {str(m): [str(n) for n in v] for m, v in merged.items()},
                "stat": stat}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"stat": {}}


def _identity(path: Path) -> list[int] | None:
    """What tells a file apart and shows it changed: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.name != MANIFEST and path.name not in keep and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def table_paths(lake: Lake, name: str) -> list[Path]:
    """The parts of the lake's parsed table ``name`` ("pieces", "notes"), in order;
    ``FileNotFoundError`` when it has none (``parsed_scores`` has not run)."""
    folder = lake.path("parsed", name)
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"no {name} table: {manifest} is missing (materialize parsed_scores)")
    return [safe_join(folder, part) for part in read_json(manifest)["parts"]]


def notes_paths(lake: Lake) -> list[Path]:
    """The parts of the lake's note table, in order (see :func:`table_paths`)."""
    return table_paths(lake, "notes")


def pieces_paths(lake: Lake) -> list[Path]:
    """The parts of the lake's pieces table, in order (see :func:`table_paths`)."""
    return table_paths(lake, "pieces")


def scan_pieces(lake: Lake) -> pl.LazyFrame:
    """The lake's pieces table (``PIECE_SCHEMA``), lazily, part after part (unsorted)."""
    return pl.scan_parquet(pieces_paths(lake), schema=PIECE_SCHEMA)


def read_pieces(lake: Lake, columns: list[str] | None = None) -> pl.DataFrame:
    """The lake's pieces table (``PIECE_SCHEMA``, or ``columns`` of it), sorted by piece id and path."""
    frame = scan_pieces(lake).sort(["piece_id", "path"])
    return (frame.select(columns) if columns else frame).collect()


_UPCAST = pl.ScanCastOptions(integer_cast="upcast")  # the parts' int32 times (and older parts' int64) as int64


def scan_notes(lake: Lake) -> pl.LazyFrame:
    """The lake's note table (``NOTE_SCHEMA``: the parts' int32 times read as int64), lazily."""
    return pl.scan_parquet(notes_paths(lake), schema=NOTE_SCHEMA, cast_options=_UPCAST)


def read_notes(lake: Lake, columns: list[str] | None = None) -> pl.DataFrame:
    """The lake's note table (``NOTE_SCHEMA``, or ``columns`` of it)."""
    frame = scan_notes(lake)
    return (frame.select(columns) if columns else frame).collect()

