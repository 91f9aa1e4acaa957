"""Ingestion: every file in the drop zone becomes exactly one row, and readable ones become pieces.

A *file* is what the user dropped; a *piece* is one score inside it (ABC files often hold many
tunes). Parsing results are cached by content hash, so re-running after adding files parses
only the new ones; a file whose path, size and modification time match its previous row is not
even read (``reuse_stat``), so a re-run costs the listing of the drop zone, not its bytes. Bad
input never raises out of :func:`ingest`: it becomes a ``rejected`` row whose reason names the
file and, for text, the line and column.

Safety: the scan opens nothing (:mod:`musicml.ingest.scan`: FIFOs, devices, sockets, dangling
or looping links and undecodable names get rows without being read); only regular files are
read, at most ``max_file_bytes``; each file is parsed in a worker process under a time and a
memory limit (:mod:`musicml.ingest.isolation`), and every score is checked against limits on
notes, tracks, duration and text size, so one hostile file costs a rejected row, not the run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import symusic

from musicml.formats import EXTENSIONS, FORMATS, ScoreError, get_format
from musicml.formats.base import Piece, Reading  # noqa: F401  (Piece: re-exported by musicml.ingest)
from musicml.ingest.note_table import (
    NOTE_PART_SCHEMA,
    NOTE_SCHEMA,
    notes_part_table,
    piece_stats,
    sorted_note_arrays,
)
from musicml.ingest.scan import Entry, read_regular, scan
from musicml.lake import Lake, atomic_path, sha256_bytes
from musicml.threads import pool_workers

PARSER_VERSION = "8"  # 3: the parse cache is written in batches of files; 4: notes name their piece by index;
# 5: alphaTex numbers of over 18 digits, frets and articulations outside MIDI pitches, time signatures over
# 255, fractional tuplets and unknown properties in parentheses are errors; SMPTE-timed MIDI named;
# text in UTF-16 or UTF-32 read by its byte-order mark; RIFF MIDI unwrapped; 6: a batch's notes are a
# parquet part of the lake's note table (``parsed/notes/``); 7: the parts store onsets and durations as int32;
# 8: a batch's pieces are a parquet part of the lake's pieces table (``parsed/pieces/``)
MAX_PROBLEMS = 20
BATCH_FILES = 128  # files a worker parses per message, cached together (128, not 64: half the parts, so
# half the per-column write costs and footers; parsed_scores on POP909 73 -> 46 ms CPU, 2026-12-04)
BATCH_BYTES = 8 * 1024 * 1024  # and at most this many input bytes per batch
# A file modified this close to the scan (or later: clock skew) is hashed but its mtime is not
# recorded, so the next run reads it again: a rewrite within one timestamp tick of the read, with
# the same size, would otherwise look unchanged ("racy git"); 2 s covers FAT's and HFS+'s ticks.
RACY_NS = 2_000_000_000
PIECES_SUFFIX, NOTES_SUFFIX = ".pieces.parquet", ".notes.parquet"  # the two files of a cache batch

FILE_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String,
    "format": pl.String,
    "bytes": pl.Int64,
    "mtime_ns": pl.Int64,  # modification time seen by the scan; null: not to be trusted (unread, or racy)
    "content_hash": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "encoding": pl.String,
    "n_pieces": pl.Int32,
    "n_problems": pl.Int32,
    "problems": pl.List(pl.String),
    "parser_version": pl.String,
}

PIECE_SCHEMA: dict[str, pl.DataType] = {
    "piece_id": pl.String,
    "content_hash": pl.String,
    "path": pl.String,
    "format": pl.String,
    "index": pl.Int32,
    "line": pl.Int32,
    "title": pl.String,
    "text": pl.String,
    "text_bytes": pl.Int64,
    "n_notes": pl.Int64,
    "n_tracks": pl.Int32,
    "quarters": pl.Float64,
    "seconds": pl.Float64,
    "min_pitch": pl.Int16,
    "max_pitch": pl.Int16,
    "tempo": pl.Float64,
    "time_signature": pl.String,
}


@dataclass
class IngestConfig:
    """What ingestion accepts, and the limits every file is parsed under."""

    max_file_bytes: int = 32 * 1024 * 1024  # larger files are rejected unread
    formats: tuple[str, ...] = FORMATS
    midi_grid: int = 4  # MIDI text serialization grid: steps per quarter note
    max_notes: int = 2_000_000  # per file
    max_tracks: int = 1024  # per score
    max_quarters: float = 200_000.0  # duration of a score in quarter notes (~28 h at 120 BPM)
    max_text_bytes: int = 16 * 1024 * 1024  # canonical text of one file (bounds MIDI-text blow-up)
    max_pieces: int = 10_000  # tunes per ABC file
    parse_timeout_s: float = 60.0  # per file, in its worker process
    max_memory_bytes: int = 2 * 1024**3  # memory a worker process may write (RLIMIT_DATA); 0: unlimited
    workers: int = 0  # reader processes; 0: one per available core
    isolate: bool = True  # parse in worker processes (False: in this process, for debugging)
    reuse_stat: bool = True  # a file whose path, size and mtime match its previous row is not read (its hash is reused); False: read and hash every file
    paths: tuple[str, ...] | None = None  # only (re)examine these drop-zone paths (as the files table names them); the other rows of the previous table are carried over if the entry still exists, entries in neither are examined as new; None: every entry

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["formats"] = list(self.formats)
        d["paths"] = None if self.paths is None else list(self.paths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> IngestConfig:
        d = dict(d)
        d["formats"] = tuple(d.get("formats", FORMATS))
        if d.get("paths") is not None:
            d["paths"] = tuple(d["paths"])
        return cls(**d)


ParsedFile = Reading  # what reading one file gave: pieces (musicml.formats.base.Piece), problems


def parse_bytes(data: bytes, fmt: str, source: str, config: IngestConfig | None = None) -> ParsedFile:
    """Read one file's bytes as ``fmt``; raises :class:`ScoreError` when nothing is usable."""
    config = config or IngestConfig()
    if not data:
        raise ScoreError(source, "empty file (0 bytes)")
    if len(data) > config.max_file_bytes:
        raise ScoreError(source, f"file too large ({len(data)} bytes > max_file_bytes {config.max_file_bytes})")
    if fmt not in FORMATS:
        raise ScoreError(source, f"unsupported format {fmt!r}")
    parsed = get_format(fmt).read(data, source, grid=config.midi_grid, max_pieces=config.max_pieces,
                                  check=lambda score, where: check_limits(score, where, config))
    notes = sum(p.score.note_num() for p in parsed.pieces)
    if notes > config.max_notes:
        raise ScoreError(source, f"too many notes ({notes} > max_notes {config.max_notes})")
    text_bytes = sum(utf8_len(p.text) for p in parsed.pieces)
    if text_bytes > config.max_text_bytes:
        raise ScoreError(source, f"canonical text too large ({text_bytes} bytes > max_text_bytes "
                                 f"{config.max_text_bytes})")
    return parsed


def utf8_len(text: str) -> int:
    """The UTF-8 byte count of ``text`` (without encoding it where it is ASCII, as MIDI text is)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def check_limits(score: symusic.Score, source: str, config: IngestConfig) -> None:
    """Raise :class:`ScoreError` when a score exceeds the tracks, notes or duration limits."""
    if len(score.tracks) > config.max_tracks:
        raise ScoreError(source, f"too many tracks ({len(score.tracks)} > max_tracks {config.max_tracks})")
    if score.note_num() > config.max_notes:
        raise ScoreError(source, f"too many notes ({score.note_num()} > max_notes {config.max_notes})")
    tpq = max(1, score.ticks_per_quarter)
    quarters = score.end() / tpq
    if quarters > config.max_quarters:
        raise ScoreError(source, f"too long ({quarters:.0f} quarter notes > max_quarters {config.max_quarters:g})")


@dataclass
class IngestResult:
    files: pl.DataFrame
    parsed: int
    reused: int
    seconds: float
    read: int = 0  # files opened and hashed (the others were trusted by their stat or unreadable)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.files["status"].value_counts().iter_rows()}


class _Todo(NamedTuple):
    """A file to parse: its row's path, format, hash, bytes and recorded mtime."""

    rel: str
    fmt: str
    digest: str
    data: bytes
    mtime_ns: int | None


def ingest(
    lake: Lake,
    config: IngestConfig | None = None,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    keep: Callable[[str], bool] | None = None,
) -> IngestResult:
    """Account for every entry of ``lake.raw_dir`` (those whose path ``keep`` accepts, when it
    is given: one bucket, :mod:`musicml.ingest.buckets`) and parse the new files into the cache.

    A file whose (path, size, mtime) match its row in ``previous`` is not read (``reuse_stat``);
    files known by (content hash, format) reuse their earlier row; the rest are parsed in
    isolated worker processes (``config.isolate``), answers coming back in any order. With
    ``config.paths`` only those entries are re-examined (see :class:`IngestConfig`), at a cost
    that grows with them, not with the drop zone (:mod:`musicml.ingest.request`).
    """
    config = config or IngestConfig()
    t0 = time.perf_counter()
    racy_after = time.time_ns() - RACY_NS
    raw_dir = lake.raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    wanted = None if config.paths is None else set(config.paths)
    request = None
    if wanted is not None and keep is None:
        from musicml.ingest.request import plan

        request = plan(raw_dir, wanted, previous, config)
    if request is not None:  # only the entries whose rows may change (musicml.ingest.request)
        prev, entries, preread = _Previous(request.subset), request.entries, request.preread
    else:
        # a full run also parses again what the cache lost (a damaged batch removed, a cache
        # folder cleared): such rows are not trusted
        has_ingested = previous is not None and bool(len(previous)) and (previous["status"] == "ingested").any()
        prev, preread = _Previous(previous, _cached_keys(lake) if has_ingested else None), {}
        carried = {} if wanted is None else {p: seen[2:4] for p, seen in prev.by_path.items() if p not in wanted}
        entries = scan(raw_dir, assume=carried)
        if keep is not None:
            entries = [e for e in entries if keep(e.rel)]
    rows: list[dict | int | None] = [None] * len(entries)  # a new row, or the index of a previous one
    first_path: dict[tuple[str, str], str] = {}
    todo: dict[int, _Todo] = {}  # files read and being parsed, until their answer
    counts = {"reused": 0, "done": 0, "read": 0, "parsed": 0}
    formats, max_bytes = frozenset(config.formats), config.max_file_bytes

    def finished(rel: str) -> None:
        counts["done"] += 1
        if progress:
            progress(counts["done"], len(entries), rel)

    def to_parse() -> Iterator[tuple[int, _Todo]]:
        """The entries in scan order, each accounted for as the parsers ask for more work (so
        reading and hashing overlap parsing, and only the files in flight are held)."""
        for i, entry in enumerate(entries):
            seen = prev.by_path.get(entry.rel)
            trusted = None
            if seen is not None and entry.problem is None:
                if wanted is not None and entry.rel not in wanted:
                    trusted = seen  # not asked for: carried over (its stat is kept, so a change still shows)
                elif config.reuse_stat and seen[3] is not None and (seen[2], seen[3]) == (entry.size, entry.mtime_ns):
                    trusted = seen
            if trusted is not None:  # the common case, kept cheap: an unchanged file, still the first of its bytes
                index, digest, size, _, fmt = trusted
                key = (digest, fmt)
                if fmt in formats and size <= max_bytes and key not in first_path and prev.first.get(key) == index:
                    first_path[key] = entry.rel
                    rows[i] = index
                    counts["reused"] += 1
                    finished(entry.rel)
                    continue
            row, job, opened = _account(entry, config, prev, first_path, trusted, racy_after,
                                        preread.pop(entry.rel, None))
            counts["read"] += opened
            if job is not None:
                todo[i] = job
                counts["parsed"] += 1
                yield i, job
                continue
            rows[i] = row
            counts["reused"] += row["status"] != "duplicate" and (row["content_hash"], row["format"]) in prev.first
            finished(entry.rel)

    for i, reply in _parse_all(lake, to_parse(), len(entries), config):
        job = todo.pop(i)
        rows[i] = _row(job.rel, job.fmt, len(job.data), job.digest, mtime_ns=job.mtime_ns, **reply)
        finished(job.rel)
    table = _table(rows, prev)
    if request is not None:
        table = pl.concat([request.untouched, table]).sort("path")
    elif keep is None:
        _remove_other_versions(lake)
    return IngestResult(table, counts["parsed"], counts["reused"], time.perf_counter() - t0, counts["read"])


def _table(rows: list[dict | int | None], prev: _Previous) -> pl.DataFrame:
    """The files table in scan order: new rows built, unchanged ones taken from the previous table."""
    new = [(i, r) for i, r in enumerate(rows) if isinstance(r, dict)]
    kept = [(i, r) for i, r in enumerate(rows) if isinstance(r, int)]
    parts = []
    if new:
        parts.append(pl.DataFrame([r for _, r in new], schema=FILE_SCHEMA)
                     .with_columns(pl.Series("_i", [i for i, _ in new], pl.Int64)))
    if kept:
        parts.append(prev.table[[r for _, r in kept]].with_columns(pl.Series("_i", [i for i, _ in kept], pl.Int64)))
    if not parts:
        return pl.DataFrame(schema=FILE_SCHEMA)
    return pl.concat(parts).sort("_i").drop("_i") if len(parts) > 1 else parts[0].drop("_i")


class _Previous:
    """The previous files table as ingestion consults it: its rows of this parser version
    (``table``), ``by_path``: ``path -> (index, hash, bytes, mtime_ns, format)`` of every hashed row, and
    ``first``: ``(hash, format) -> index`` of the first row of those bytes that was read to the
    end (ingested or rejected). A table from before ``mtime_ns`` existed has no mtimes: its
    files are read once more. ``cached``: the ``(hash, format)`` the parse cache holds, where
    known; an ingested row not among them is left out (its file is parsed again)."""

    def __init__(self, previous: pl.DataFrame | None, cached: set[tuple[str, str]] | None = None) -> None:
        self.by_path: dict[str, tuple[int, str, int, int | None, str]] = {}
        self.first: dict[tuple[str, str], int] = {}
        self.table = pl.DataFrame(schema=FILE_SCHEMA)
        if previous is None or not len(previous):
            return
        table = previous.filter(pl.col("parser_version") == PARSER_VERSION)
        if "mtime_ns" not in table.columns:
            table = table.with_columns(pl.lit(None, pl.Int64).alias("mtime_ns"))
        self.table = table.select(list(FILE_SCHEMA)).cast(FILE_SCHEMA)
        cols = (self.table[c].to_list() for c in ("path", "content_hash", "bytes", "mtime_ns", "format", "status"))
        for i, (path, digest, size, mtime, fmt, status) in enumerate(zip(*cols)):
            if cached is not None and status == "ingested" and (digest, fmt) not in cached:
                continue  # its parse is no longer cached: examined as a new file
            if digest is not None:
                self.by_path[path] = (i, digest, size, mtime, fmt)
                if status in ("ingested", "rejected"):
                    self.first.setdefault((digest, fmt), i)

    def row(self, i: int) -> dict:
        return self.table.row(i, named=True)


def hidden(rel: str) -> bool:
    """Whether a drop-zone path is a dotfile or lies in a dot-folder (rejected unread)."""
    return rel.startswith(".") or "/." in rel


def format_of(rel: str) -> str | None:
    """:func:`musicml.formats.detect_format` of a scan path without building a ``Path`` (it runs
    per entry): the suffix as ``PurePath.suffix`` takes it."""
    name = rel.rpartition("/")[2]
    dot = name.rfind(".")
    return _extensions().get(name[dot:].lower() if 0 < dot < len(name) - 1 else "")


def _account(entry: Entry, config: IngestConfig, prev: _Previous, first_path: dict, trusted: tuple | None,
             racy_after: int, preread: bytes | None = None) -> tuple[dict | None, _Todo | None, bool]:
    """The row of an entry that needs no parsing, or the file to parse; and whether it was read.
    ``trusted``: ``(index, hash, bytes, mtime_ns, format)`` of its previous row, whose hash is
    taken without reading the file; ``preread``: its bytes, read already."""
    rel, fmt, mtime = entry.rel, format_of(entry.rel), entry.mtime_ns
    if entry.problem:
        return _row(rel, fmt, entry.size, None, "rejected", f"{rel}: {entry.problem}"), None, False
    if hidden(rel):
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: hidden file or folder (name starts with '.'), not read", mtime_ns=mtime), None, False
    if fmt is None or fmt not in config.formats:
        accepted = ", ".join(sorted(e for e, f in _extensions().items() if f in config.formats))
        suffix = Path(rel).suffix or "(none)"
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: unknown or disabled file type {suffix!r} (accepted: {accepted})",
                    mtime_ns=mtime), None, False
    if entry.size > config.max_file_bytes:
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: file too large ({entry.size} bytes > max_file_bytes {config.max_file_bytes})",
                    mtime_ns=mtime), None, False
    if trusted is not None:
        _, digest, size, mtime, _ = trusted
        row = _known_row(rel, fmt, size, mtime, digest, prev, first_path)
        if row is not None:
            return row, None, False  # else its parse is not known: read it after all
    try:
        data = preread if preread is not None else read_regular(entry.fspath, config.max_file_bytes)
    except OSError as err:
        return _row(rel, fmt, entry.size, None, "rejected", f"{rel}: cannot read file: {err.strerror or err}"), None, True
    if len(data) > config.max_file_bytes:
        return _row(rel, fmt, len(data), None, "rejected",
                    f"{rel}: file too large (> max_file_bytes {config.max_file_bytes})"), None, True
    if not data:
        return _row(rel, fmt, 0, None, "rejected", f"{rel}: empty file (0 bytes)", mtime_ns=entry.mtime_ns), None, True
    digest = sha256_bytes(data)
    mtime = entry.mtime_ns if entry.mtime_ns is not None and entry.mtime_ns < racy_after else None
    row = _known_row(rel, fmt, len(data), mtime, digest, prev, first_path)
    if row is not None:
        return row, None, True
    first_path[(digest, fmt)] = rel
    return None, _Todo(rel, fmt, digest, data, mtime), True


def _known_row(rel: str, fmt: str, size: int, mtime: int | None, digest: str, prev: _Previous,
               first_path: dict) -> dict | None:
    """The row of a file whose bytes are a duplicate of an earlier entry's (same hash and
    format: byte-identical files of different formats are each read as their own) or were read
    before (``prev.first``); None when they must be parsed."""
    key = (digest, fmt)
    if key in first_path:
        return _row(rel, fmt, size, digest, "duplicate", f"{rel}: identical bytes to {first_path[key]}",
                    mtime_ns=mtime)
    if key not in prev.first:
        return None
    first_path[key] = rel
    was = prev.row(prev.first[key])
    reason = was["reason"] if was["status"] == "rejected" else ""
    problems = list(was["problems"] or [])
    if was["path"] != rel:  # the same bytes under a new name: messages name the new file
        reason = reason.replace(was["path"], rel)
        problems = [p.replace(was["path"], rel) for p in problems]
    return _row(rel, fmt, size, digest, was["status"], reason, encoding=was["encoding"],
                n_pieces=was["n_pieces"], problems=problems, mtime_ns=mtime)


def _parse_all(lake: Lake, todo: Iterator[tuple[int, _Todo]], at_most: int, config: IngestConfig):
    """``(index, reply)`` for every file to parse (``todo``, taken as the parsers need more work;
    ``at_most``: a bound on their number): in worker processes unless ``isolate`` is off (then in
    this process, in cache batches alike)."""
    cfg = replace(config, paths=None).to_dict()  # workers need the limits, not the request
    if not config.isolate:
        while chunk := list(islice(todo, BATCH_FILES)):
            batch = CacheBatch(str(lake.root), cfg)
            replies = [batch.add(job.data, job.fmt, job.rel, job.digest) for _, job in chunk]
            failed = batch.write()
            for k, ((i, _), reply) in enumerate(zip(chunk, replies)):
                yield i, _rejected(failed[k]) if k in failed else reply
        return
    from musicml.ingest.isolation import Task, pool

    index: dict[int, int] = {}  # id(task) -> its entry

    def tasks(jobs: Iterator[tuple[int, _Todo]]) -> Iterator[Task]:
        for i, job in jobs:
            task = Task(str(lake.root), job.rel, job.fmt, job.digest, job.data, cfg)
            index[id(task)] = i
            yield task

    first = next(todo, None)  # no worker is started for a run with nothing to parse
    if first is None:
        return
    workers = pool_workers(config.workers, at_most)  # never more than the cores
    runs = pool(workers, config.max_memory_bytes).run(tasks(chain([first], todo)), config.parse_timeout_s, batch_files=BATCH_FILES,
                                                       batch_bytes=BATCH_BYTES, at_most=at_most)
    for task, reply in runs:
        yield index.pop(id(task)), reply


_TEMP = re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s:'\",)]+")


def _clean(message: str) -> str:
    """A reader message without the random temp-file names some native readers print, so the
    same file gets the same reason on every run."""
    return _TEMP.sub("<temp file>", message)


def _rejected(reason: str) -> dict:
    return {"status": "rejected", "reason": _clean(reason)[:2000], "encoding": None, "n_pieces": 0, "problems": []}


@dataclass
class _Parsed:
    """One parsed file as its cache batch holds it: piece rows and note columns, no scores."""

    digest: str
    rel: str
    fmt: str
    pieces: list[dict]
    notes: list[dict]  # note_arrays of each piece, in the order of ``pieces``


class CacheBatch:
    """Files parsed one by one (:meth:`add`) and cached together (:meth:`write`): one pieces and
    one notes file per batch (parquet parts of the lake's tables), so a small file costs no files of its own."""

    def __init__(self, lake_root: str, config: dict) -> None:
        self.lake = Lake(Path(lake_root), Path(lake_root) / "raw")
        self.config = IngestConfig.from_dict(config)
        self.parsed: dict[int, _Parsed] = {}  # add order -> what to write
        self.n = 0
        self.out_of_memory = False  # a file ran out of memory: this process is best replaced

    def add(self, data: bytes, fmt: str, rel: str, digest: str) -> dict:
        """Parse one file; its row fields as a JSON-able dict. Never raises (it runs in an
        ingestion worker; :func:`parse_bytes` does the reading). An ``ingested`` answer holds
        once :meth:`write` has not failed it."""
        k, self.n = self.n, self.n + 1
        try:
            parsed = parse_bytes(data, fmt, rel, self.config)
            self.parsed[k] = _tabulate(digest, rel, fmt, parsed)
        except ScoreError as err:
            return _rejected(str(err))
        except MemoryError:
            self.out_of_memory = True
            return _rejected(f"{rel}: out of memory while reading (max_memory_bytes {self.config.max_memory_bytes})")
        except Exception as err:  # a reader bug must not stop the run either
            return _rejected(f"{rel}: reader failed: {type(err).__name__}: {err}")
        return {"status": "ingested", "reason": "", "encoding": parsed.encoding, "n_pieces": len(parsed.pieces),
                "problems": [_clean(p) for p in parsed.problems[:MAX_PROBLEMS]]}

    def write(self) -> dict[int, str]:
        """Write the cache of the files added; ``{add index: reason}`` for those that could not
        be written (after a failed batch write each file is written alone, so one bad file
        costs only its own row)."""
        entries = list(self.parsed.items())
        self.parsed = {}
        if not entries:
            return {}
        try:
            _write_cache(self.lake, [e for _, e in entries])
            return {}
        except Exception:
            if len(entries) == 1:
                return {entries[0][0]: _write_failure(entries[0][1])}
        failed: dict[int, str] = {}
        for k, entry in entries:
            try:
                _write_cache(self.lake, [entry])
            except Exception:
                failed[k] = _write_failure(entry)
        return failed


def _write_failure(entry: _Parsed) -> str:
    import sys

    err = sys.exc_info()[1]
    return f"{entry.rel}: cannot write the parse cache: {type(err).__name__}: {err}"


def _tabulate(digest: str, rel: str, fmt: str, parsed: ParsedFile) -> _Parsed:
    pieces, notes = [], []
    for p in parsed.pieces:
        pid = piece_id(digest, p.index)
        columns = getattr(p, "columns", None)  # MIDI pieces carry their score's note columns
        pieces.append({"piece_id": pid, "content_hash": digest, "path": rel, "format": fmt, "index": p.index,
                       "line": p.line, "title": p.title, "text": p.text,
                       "text_bytes": utf8_len(p.text),
                       **piece_stats(p.score, columns)})
        notes.append(sorted_note_arrays(p.score, columns))
    return _Parsed(digest, rel, fmt, pieces, notes)


def warm_up(freeze: bool = True) -> None:
    """Compile (or load from numba's cache) the compiled kernels of the MIDI path (the text
    encoder's and the note table's) for the argument types ingestion passes, by reading a small
    MIDI; ``freeze``: then compile no others (a call with other types raises ``TypeError``). An
    ingestion worker does this before its memory limit applies: LLVM compiling under a limit
    can abort the process."""
    from musicml.formats.midi import encode_kernels
    from musicml.formats.midi import text as miditext
    from musicml.ingest import note_kernels

    for tpq in (480, 24):  # resampled to the table's resolution, and not
        score = symusic.Score(tpq)
        for drum in (False, True):
            track = symusic.Track("warm-up", 0, drum)
            track.notes.append(symusic.Note(0, tpq, 60, 90))
            score.tracks.append(track)
        entry = _tabulate("0" * 64, "warm-up.mid", "midi", parse_bytes(score.dumps_midi(), "midi", "warm-up.mid"))
        part = notes_part_table([r["piece_id"] for r in entry.pieces], entry.notes)
        pq.write_table(part, pa.BufferOutputStream(), **NOTES_PART_PARQUET)  # (the parquet writer loaded)
        miditext.encode(score, max_tracks=1)  # what choosing tracks adds
    if freeze:
        for kernel in (*encode_kernels.KERNELS, *note_kernels.KERNELS):
            kernel.disable_compile()


def parse_and_cache(lake_root: str, data: bytes, fmt: str, rel: str, digest: str, config: dict) -> dict:
    """Parse one file and write its cache entry (a batch of one); the row fields as a dict."""
    batch = CacheBatch(lake_root, config)
    reply = batch.add(data, fmt, rel, digest)
    failed = batch.write()
    return _rejected(failed[0]) if 0 in failed else reply


def _row(rel: str, fmt: str | None, size: int, digest: str | None, status: str, reason: str = "", **kw) -> dict:
    """One row of ``FILE_SCHEMA``."""
    problems = kw.get("problems", [])
    return {
        "path": rel,
        "format": fmt or "unknown",
        "bytes": size,
        "mtime_ns": kw.get("mtime_ns"),
        "content_hash": digest,
        "status": status,
        "reason": reason,
        "encoding": kw.get("encoding"),
        "n_pieces": kw.get("n_pieces", 0),
        "n_problems": len(problems),
        "problems": problems[:MAX_PROBLEMS],
        # no parser version where the reader never finished: the next run parses the file again
        "parser_version": "" if kw.get("unfinished") else PARSER_VERSION,
    }


def _extensions() -> dict[str, str]:
    return EXTENSIONS


def piece_id(content_hash: str, index: int) -> str:
    return f"{content_hash[:16]}-{index:04d}"


def _cache_dir(lake: Lake) -> Path:
    return lake.dir("ingest", "cache", f"v{PARSER_VERSION}")


def _remove_other_versions(lake: Lake) -> None:
    """Remove the parse caches of other parser versions (``v<N>`` beside this one's): no row of
    this version reads them, and a full ingestion has just parsed again what they held."""
    here = _cache_dir(lake)
    for other in here.parent.glob("v*"):
        if other != here and other.is_dir() and not other.is_symlink():
            shutil.rmtree(other, ignore_errors=True)


def _write_cache(lake: Lake, entries: list[_Parsed]) -> None:
    """One batch: its notes, then its pieces (the pieces file is the batch's index entry, so a
    reader that sees it finds the notes), each written atomically. Both are parts of the lake's
    tables as ``parsed_scores`` publishes them (:mod:`musicml.ingest.parsed`: the parts themselves,
    linked), written here, in the worker that parsed the files, so that the tables are written on
    every core and publishing them moves no note and no text: the notes in ``NOTE_PART_SCHEMA``
    (:func:`write_notes_part`), the pieces in ``PIECE_SCHEMA`` (:func:`write_pieces_part`; a
    part whose files have moved since is written anew with their paths as they are now when
    published). The name hashes the batch's members."""
    members = sorted(f"{e.digest}.{e.fmt}" for e in entries)
    name = sha256_bytes("\n".join(members).encode())[:32]
    base = _cache_dir(lake)
    rows = [row for e in entries for row in e.pieces]
    ids = [r["piece_id"] for r in rows]
    write_notes_part(base / f"{name}{NOTES_SUFFIX}", notes_part_table(ids, [n for e in entries for n in e.notes]), ids)
    write_pieces_part(base / f"{name}{PIECES_SUFFIX}", pa.Table.from_pylist(rows, schema=_pieces_arrow_schema()))


# How a batch's notes are written (pyarrow.parquet.write_table options): the parts of the lake's
# note table. Measured on POP909 and its versions (2026-12-03, the first 1,280 files: 2.0M notes in
# 20 batches; CPU of the writes to a file, bytes on disk per note, best of 5): every integer column
# BYTE_STREAM_SPLIT then lz4 38.2 ns, 2.85 B (int16 columns stored as parquet's INT32 have two zero
# byte streams, which lz4 removes for almost nothing); every one delta encoded, no codec (until then)
# 48.7 ns, 4.11 B; plain, no codec 36 ns, 42 B; zstd (level 1) after the split 55 ns, 1.94 B; lz4
# alone (plain) 58 ns, 7.3 B. Per column, split and lz4 cost 3.4 ns a note for an int16 (delta 5.5)
# and 6.6 for an int64 (delta 6.3). Split integers need a reader of parquet 2.11 (pyarrow, polars,
# DuckDB >= 2.0 read them; readers still at parquet 2.10 do not). ``piece_id`` comes dictionary
# encoded (``store_schema=False``: it reads back as the string column ``NOTE_SCHEMA`` says), without
# statistics: a part's piece ids are hashes, so its minimum and maximum span almost every id and
# filter nothing, and they cost 2 ns a note (publishing checks a part by the digest of its piece
# ids in the footer instead, :data:`PART_PIECES_KEY`). Values are encoded 65,536 at a time, not
# pyarrow's 1,024 (a batch's part is about 100k notes).
_SPLIT = "BYTE_STREAM_SPLIT"
NOTES_PART_PARQUET = {"compression": "lz4", "use_dictionary": ["piece_id"], "write_statistics": False,
                      "column_encoding": {k: _SPLIT for k in ("track", "program", "onset", "duration", "pitch",
                                                              "velocity")},
                      "write_batch_size": 65536, "store_schema": False}

PART_PIECES_KEY = b"musicml.pieces"  # a cache part's footer: the digest of its batch's piece ids (_ids_digest)


def write_notes_part(path: Path, notes: pa.Table | pl.DataFrame, pieces: list[str] | None = None) -> None:
    """Write a part of the note table atomically with :data:`NOTES_PART_PARQUET`: a table of
    :func:`notes_part_table`, or a frame in ``NOTE_SCHEMA`` (stored in ``NOTE_PART_SCHEMA``);
    ``piece_id`` dictionary encoded here where it is not already. ``pieces``: the ids of the
    batch it holds the notes of, in order, whose digest its footer keeps (:func:`_check_part`)."""
    table = notes if isinstance(notes, pa.Table) else notes.cast(NOTE_PART_SCHEMA).to_arrow()
    if not pa.types.is_dictionary(table.schema.field("piece_id").type):
        table = table.set_column(0, "piece_id", table["piece_id"].dictionary_encode())
    table = _required(table)
    with atomic_path(path) as tmp, pq.ParquetWriter(str(tmp), table.schema, **NOTES_PART_PARQUET) as writer:
        writer.write_table(table)
        if pieces is not None:
            writer.add_key_value_metadata({PART_PIECES_KEY: _ids_digest(pieces)})


def _required(table: pa.Table) -> pa.Table:
    """``table`` with every column that holds no null marked non-nullable: parquet then stores it
    as REQUIRED, with no definition levels to encode (a third of a part's write: 30 -> 21 ns a note
    on 100k notes, 2026-12-04). Readers see the same columns (polars' and DuckDB's are nullable
    anyway; a note table has no nulls)."""
    schema = pa.schema([f.with_nullable(f.nullable and c.null_count > 0) for f, c in zip(table.schema, table.columns)])
    return table if schema == table.schema else pa.Table.from_arrays(table.columns, schema=schema)


def _ids_digest(ids: list[str] | tuple[str, ...]) -> str:
    return sha256_bytes("\n".join(ids).encode())[:32]


# How a batch's pieces are written (pyarrow.parquet.write_table options): the parts of the lake's
# pieces table. Measured on POP909 and its versions (2,873 pieces, 58 MB of MIDI text; CPU of the
# write, of polars' read, size), 2026-12-03: the text uncompressed, every other column lz4 (these)
# 33 ms, 22 ms, 58.2 MB; everything lz4 94 ms, 34 ms, 16.1 MB; snappy 90 ms, 41 ms, 16.4 MB; zstd
# (level 1) 126 ms, 50 ms, 9.5 MB. The text is most of it, and compressing it is what costs: it is
# read once (``deduped_scores``), whose tables onward are compressed. No dictionary of the text
# (every text differs) and no statistics of it (a min and max of long strings); statistics of
# ``piece_id`` (what readers filter by). Written by the workers, 2026-12-04: 19 us a piece against
# Arrow IPC's 9 (the cache's format until then), which ``parsed_scores`` then copied into one
# parquet file (its 58 MB taken and written again: 37 us a file, and the most variable part of it).
PIECES_PARQUET = {"compression": {c: "none" if c == "text" else "lz4" for c in PIECE_SCHEMA},
                  "use_dictionary": ["format", "time_signature"], "write_statistics": ["piece_id"]}


def write_pieces_part(path: Path, pieces: pa.Table | pl.DataFrame) -> None:
    """Write a part of the pieces table atomically with :data:`PIECES_PARQUET`: a table in
    ``PIECE_SCHEMA`` (Arrow's, :func:`_pieces_arrow_schema`, or a polars frame)."""
    table = pieces if isinstance(pieces, pa.Table) else pieces.select(list(PIECE_SCHEMA)).cast(PIECE_SCHEMA).to_arrow()
    schema = _pieces_arrow_schema()
    with atomic_path(path) as tmp:
        pq.write_table(table if table.schema == schema else table.cast(schema), str(tmp), **PIECES_PARQUET)


_IPC_OPTIONS: dict[str | None, pa.ipc.IpcWriteOptions] = {}


@lru_cache(maxsize=1)
def _pieces_arrow_schema() -> pa.Schema:
    """``PIECE_SCHEMA`` in Arrow (as polars writes it)."""
    return pl.DataFrame(schema=PIECE_SCHEMA).to_arrow().schema


def _write_ipc(path: Path, table: pa.Table, compression: str | None) -> None:
    """On this thread (Arrow's thread pool would reserve address space a worker's limit counts)."""
    options = _IPC_OPTIONS.get(compression)
    if options is None:
        options = _IPC_OPTIONS[compression] = pa.ipc.IpcWriteOptions(compression=compression, use_threads=False)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)


_INDEX_FILE = "index.arrow"  # in the cache folder: the batches' members, so far as read (see _cache_index)
# what a selection reads of the cache's pieces: what it joins and checks by, and what the step reports
_KEYS = ["piece_id", "content_hash", "path", "format", "n_notes", "text_bytes"]
_INDEX_SCHEMA = {**{k: PIECE_SCHEMA[k] for k in _KEYS}, "batch": pl.String}


def _cache_index(lake: Lake, pieces: pl.DataFrame | None = None) -> pl.DataFrame:
    """``content_hash, format, batch`` (the batch's pieces file) of every cached file, one batch
    each (the first by name where two hold the same file); ``pieces``: :func:`_index_pieces`
    where the caller has it."""
    rows = _index_pieces(lake) if pieces is None else pieces
    return (rows.drop_nulls("content_hash").select("content_hash", "format", "batch").unique().sort("batch")
            .unique(["content_hash", "format"], keep="first"))


def _index_pieces(lake: Lake) -> pl.DataFrame:
    """The :data:`_KEYS` of every cached piece and its ``batch`` (the pieces file; a batch of no
    pieces: a row of nulls), batch by batch in its order. What the batches already read hold is
    kept in the folder's ``index.arrow`` (batches never change once written), so a call reads
    only the batches new since: its cost grows with them, not with the cache. A batch whose notes
    file is gone or whose pieces file cannot be read is no cache: it is removed
    (:func:`_drop_batch`), and a full ingestion parses its files again."""
    base = _cache_dir(lake)
    return _index_rows(base).with_columns(batch=pl.lit(f"{base}{os.sep}") + pl.col("batch"))


def _index_rows(base: Path) -> pl.DataFrame:
    """The index of the cache batches in ``base`` (``_INDEX_SCHEMA``, ``batch`` the file name),
    the stored index brought up to date (see :func:`_index_pieces`)."""
    names = set(os.listdir(base))
    live = []
    for name in sorted(n for n in names if n.endswith(PIECES_SUFFIX)):
        if name.replace(PIECES_SUFFIX, NOTES_SUFFIX) in names:
            live.append(name)
        else:
            _drop_batch(base / name, "its notes file is missing")
    stored = _read_index(base / _INDEX_FILE) if _INDEX_FILE in names else pl.DataFrame(schema=_INDEX_SCHEMA)
    known = set(stored["batch"].to_list())
    new = [n for n in live if n not in known]
    held = stored if known <= set(live) else stored.filter(pl.col("batch").is_in(live))
    if new:
        held = pl.concat([held, _batch_members(base, new)])
    if new or len(held) < len(stored):
        _write_ipc(base / _INDEX_FILE, held.to_arrow(), None)
    return held


def _read_index(path: Path) -> pl.DataFrame:
    """The stored index (empty where it is unreadable: it is rebuilt)."""
    try:
        with pa.OSFile(str(path)) as f:
            table = pa.ipc.open_file(f).read_all()
        return pl.from_arrow(table.select(list(_INDEX_SCHEMA))).cast(_INDEX_SCHEMA)
    except Exception:  # noqa: BLE001 (a damaged index is only read again from the batches)
        return pl.DataFrame(schema=_INDEX_SCHEMA)


def _batch_members(base: Path, names: list[str]) -> pl.DataFrame:
    """The index rows of these batches (``batch``: the file name); a batch of no pieces is one
    row of nulls (so that it is known); unreadable ones removed."""
    def members(name: str) -> pl.DataFrame:
        rows = pl.from_arrow(pq.read_table(base / name, columns=_KEYS))  # (no text read)
        rows = rows if len(rows) else pl.DataFrame([[None]] * len(_KEYS), schema=rows.schema)
        return rows.with_columns(batch=pl.lit(name))

    try:
        if len(names) > 4:  # one scan (faster for many); where it fails, one at a time to find the damaged
            held = pl.scan_parquet([str(base / n) for n in names], include_file_paths="batch").select(
                *_KEYS, pl.col("batch").str.split(os.sep).list.last()).collect()
            empty = sorted(set(names) - set(held["batch"].to_list()))
            return pl.concat([held.cast(_INDEX_SCHEMA), *(members(n).cast(_INDEX_SCHEMA) for n in empty)])
    except Exception:  # noqa: BLE001 (polars' and Arrow's errors alike)
        pass
    parts = [pl.DataFrame(schema=_INDEX_SCHEMA)]
    for name in names:
        try:
            parts.append(members(name).cast(_INDEX_SCHEMA))
        except Exception as e:  # noqa: BLE001
            _drop_batch(base / name, f"its pieces file is unreadable ({type(e).__name__}: {e})")
    return pl.concat(parts)


def _cached_keys(lake: Lake) -> set[tuple[str, str]]:
    """``(content_hash, format)`` of every file the cache holds."""
    rows = _index_rows(_cache_dir(lake)).drop_nulls("content_hash").unique(["content_hash", "format"])
    return set(zip(rows["content_hash"].to_list(), rows["format"].to_list()))


def _notes_path(pieces: Path | str) -> Path:
    pieces = Path(pieces)
    return pieces.with_name(pieces.name.replace(PIECES_SUFFIX, NOTES_SUFFIX))


def _drop_batch(pieces: Path, why: str, stacklevel: int = 3) -> None:
    """Remove a damaged cache batch (both files; it is a cache: its files are parsed again by
    the next full ingestion), with a warning naming it and why."""
    warnings.warn(f"parse cache batch {pieces.name} removed: {why}", stacklevel=stacklevel)
    for path in (pieces, _notes_path(pieces)):
        path.unlink(missing_ok=True)


def cache_paths(lake: Lake, digest: str, fmt: str) -> tuple[Path, Path]:
    """The pieces and notes files of the cache batch holding these bytes read as ``fmt``;
    ``FileNotFoundError`` when none does."""
    hit = _cache_index(lake).filter((pl.col("content_hash") == digest) & (pl.col("format") == fmt))
    if not len(hit):
        raise FileNotFoundError(f"no parse cache for {digest}.{fmt} under {_cache_dir(lake)}")
    pieces = Path(hit["batch"][0])
    return pieces, _notes_path(pieces)


@dataclass(frozen=True)
class CachedBatch:
    """One cache batch as the lake's parsed tables use it."""

    pieces_path: Path  # its pieces: a part of the pieces table (parquet, ``PIECE_SCHEMA``)
    notes_path: Path  # its notes: a part of the note table (parquet, ``NOTE_PART_SCHEMA``)
    held: tuple[str, ...]  # the ids of every piece it holds, in its order
    chosen: tuple[str, ...]  # those the lake's pieces take from it (ingested now, and not from another batch)
    rows: int  # the notes it holds (of every held piece)
    chosen_rows: int  # the notes of its chosen pieces
    paths: tuple[tuple[str, str], ...] = ()  # (piece id, its file's path now) of the chosen, by id and path
    moved: bool = False  # a chosen piece's path now is not the one its pieces file holds

    @property
    def whole(self) -> bool:
        """Every piece it holds is taken from it: its notes part is the table's as it is."""
        return len(self.chosen) == len(self.held)

    @property
    def whole_pieces(self) -> bool:
        """Its pieces file is the pieces table's part as it is: whole, and no file moved."""
        return self.whole and not self.moved


@dataclass(frozen=True)
class ParsedSelection:
    """What the lake's parsed tables hold now: the pieces (their :data:`_KEYS` columns in Arrow,
    paths as they are now, sorted by piece id and path) and the cache batches they and their
    notes are in (by name)."""

    pieces: pa.Table
    batches: list[CachedBatch]


def select_parsed(lake: Lake, files: pl.DataFrame, trusted: Callable[[CachedBatch], bool] | None = None
                  ) -> ParsedSelection:
    """The pieces of every ``ingested`` file of ``files`` (their texts unread) and the cache
    batches holding them, each checked (:func:`_check_part`) unless ``trusted`` says it was
    (publishing passes the batches whose files are already the lake's parts); a file with no
    cache (or a damaged batch, then removed) raises ``FileNotFoundError``."""
    ingested = files.filter(pl.col("status") == "ingested").select("path", "content_hash", "format")
    if not len(ingested):
        return ParsedSelection(_keys_schema().empty_table(), [])
    index = _index_pieces(lake)
    wanted = ingested.unique(["content_hash", "format"]).join(_cache_index(lake, index), on=["content_hash", "format"],
                                                              how="left")
    missing = wanted.filter(pl.col("batch").is_null())
    if len(missing):
        raise FileNotFoundError(f"no parse cache for {len(missing)} ingested file(s), e.g. "
                                f"{missing['path'][0]!r} ({missing['content_hash'][0]}): {_REPARSE}")
    keys = index.filter(pl.col("batch").is_in(wanted["batch"].unique().implode())).drop_nulls("piece_id")
    taken = keys.join(wanted.select("content_hash", "format", "batch"), on=["content_hash", "format", "batch"])
    now = taken.join(ingested.select("content_hash", "format", pl.col("path").alias("now")),
                     on=["content_hash", "format"]).sort(["piece_id", "now"])
    chosen = {b: (ids, n) for b, ids, n in taken.group_by("batch").agg("piece_id", pl.col("n_notes").sum()).iter_rows()}
    located = {b: (list(zip(ids, at, strict=True)), moved) for b, ids, at, moved in now.group_by("batch").agg(
        "piece_id", "now", (pl.col("path") != pl.col("now")).any()).iter_rows()}
    batches = []
    for name, ids, n_notes in keys.group_by("batch", maintain_order=True).agg("piece_id", "n_notes").iter_rows():
        mine, mine_rows = chosen.get(name, ((), 0))
        paths, moved = located.get(name, ([], False))
        batch = CachedBatch(Path(name), _notes_path(name), tuple(ids), tuple(mine), int(sum(n_notes)), int(mine_rows),
                            tuple(paths), moved or len(paths) != len(mine))  # (a piece of two paths: two rows)
        if trusted is None or not trusted(batch):
            _check_part(batch)
        batches.append(batch)
    pieces = now.drop("path", "batch").rename({"now": "path"}).select(_KEYS).to_arrow()
    return ParsedSelection(pieces.cast(_keys_schema()), sorted(batches, key=lambda b: b.pieces_path.name))


def load_parsed(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pieces and notes of every ``ingested`` file, from the cache; paths as they are now. Both
    in their schemas (``PIECE_SCHEMA``, ``NOTE_SCHEMA``), each sorted by piece id (the pieces
    then by path, a piece's notes in the note table's order)."""
    selection = select_parsed(lake, files)
    pieces = [read_pieces_part(b) for b in selection.batches]
    notes = [read_part(b) for b in selection.batches]
    return (pl.concat(pieces).sort(["piece_id", "path"]) if pieces else pl.DataFrame(schema=PIECE_SCHEMA),
            pl.concat(notes).sort("piece_id", maintain_order=True) if notes else pl.DataFrame(schema=NOTE_SCHEMA))


def read_pieces_part(batch: CachedBatch) -> pl.DataFrame:
    """The pieces of a batch's chosen pieces (``PIECE_SCHEMA``, paths as they are now; the
    batch's order where its file is the part as it is, else by piece id and path); a damaged
    file removes the batch, named in a ``FileNotFoundError``."""
    try:
        pieces = pl.from_arrow(pq.read_table(batch.pieces_path)).cast(PIECE_SCHEMA)
        if pieces["piece_id"].to_list() != list(batch.held):
            raise ValueError("its pieces are not the batch's")
    except Exception as e:  # noqa: BLE001 (Arrow's, polars' and our errors alike)
        raise _damaged(batch.pieces_path, f"its pieces file is unreadable ({type(e).__name__}: {e})") from e
    if batch.whole_pieces:
        return pieces
    now = pl.DataFrame(list(batch.paths), schema={"piece_id": pl.String, "path": pl.String}, orient="row")
    return now.join(pieces.drop("path"), on="piece_id", maintain_order="left").select(list(PIECE_SCHEMA))


def read_part(batch: CachedBatch) -> pl.DataFrame:
    """The notes of a batch's chosen pieces (``NOTE_SCHEMA``); a damaged part (unreadable, or
    holding pieces the batch does not) removes the batch, named in a ``FileNotFoundError``."""
    try:
        notes = pl.read_parquet(batch.notes_path)
        bad = set(notes["piece_id"].unique().to_list()) - set(batch.held)
        if bad or notes.schema != pl.Schema(NOTE_PART_SCHEMA):
            raise ValueError(f"it holds pieces the batch does not ({sorted(bad)[:3]})" if bad
                             else f"its schema is {dict(notes.schema)}")
    except Exception as e:  # noqa: BLE001 (Arrow's, polars' and our errors alike)
        raise _damaged(batch.pieces_path, f"its notes file is unreadable ({type(e).__name__}: {e})") from e
    notes = notes.cast(NOTE_SCHEMA)
    return notes if batch.whole else notes.filter(pl.col("piece_id").is_in(batch.chosen))


def _check_part(batch: CachedBatch) -> None:
    """Whether a batch's parts are whole, from their footers alone (cheap: they are published
    unread): the pieces in the pieces table's columns, as many as the index says it holds; the
    notes in the note table's, as many rows as its pieces have notes, and written for the
    batch's pieces (:data:`PART_PIECES_KEY`). Else the batch is removed, named in a ``FileNotFoundError``."""
    try:
        meta = pq.read_metadata(batch.pieces_path)
        if meta.schema.names != list(PIECE_SCHEMA) or meta.num_rows != len(batch.held):
            raise ValueError(f"it holds {meta.num_rows} pieces in columns {meta.schema.names}, its index "
                             f"{len(batch.held)}")
    except Exception as e:  # noqa: BLE001
        raise _damaged(batch.pieces_path, f"its pieces file is unreadable ({type(e).__name__}: {e})") from e
    try:
        meta = pq.read_metadata(batch.notes_path)
        if meta.schema.names != list(NOTE_SCHEMA) or meta.num_rows != batch.rows:
            raise ValueError(f"it holds {meta.num_rows} notes in columns {meta.schema.names}, its pieces "
                             f"{batch.rows}")
        if (meta.metadata or {}).get(PART_PIECES_KEY) != _ids_digest(batch.held).encode():
            raise ValueError("it was not written for the batch's pieces (the digest of their ids in its footer)")
    except Exception as e:  # noqa: BLE001
        raise _damaged(batch.pieces_path, f"its notes file is unreadable ({type(e).__name__}: {e})") from e


_REPARSE = "a full ingestion (raw_scores, every path) parses them again"


@lru_cache(maxsize=1)
def _keys_schema() -> pa.Schema:
    """The :data:`_KEYS` columns of ``PIECE_SCHEMA`` in Arrow (what a selection holds)."""
    full = _pieces_arrow_schema()
    return pa.schema([full.field(c) for c in _KEYS])


def _damaged(pieces: Path, why: str) -> FileNotFoundError:
    """Remove a damaged batch found while reading it; the error that names it, to raise."""
    _drop_batch(pieces, why, stacklevel=4)
    return FileNotFoundError(f"parse cache batch {pieces.name} removed: {why}; {_REPARSE}")


def files_table_path(lake: Lake) -> Path:
    """Where ingestion writes the files table (one row per drop-zone entry)."""
    return lake.path("ingest", "files.parquet")


@dataclass(frozen=True)
class DropZoneChanges:
    """How the drop zone differs from the files table: display paths added, changed (size or
    mtime not as recorded, or never recorded) and removed, and how many entries it holds."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    entries: int
    key: str  # digest of the changes with the sizes and mtimes seen: one per state of the zone

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path to (re)examine, sorted: what ``IngestConfig.paths`` takes."""
        return tuple(sorted(self.added + self.changed + self.removed))

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed)}


def drop_zone_changes(raw_dir: Path, files: pl.DataFrame | None) -> DropZoneChanges:
    """Compare the drop-zone listing (path, size, mtime from ``lstat``; nothing is opened, so
    links, FIFOs and odd names never raise) with the files table ``files`` (None: none yet)."""
    entries = scan(raw_dir) if Path(raw_dir).is_dir() else []
    recorded: dict[str, tuple[int, int | None]] = {}
    if files is not None and len(files):
        mtimes = files["mtime_ns"].to_list() if "mtime_ns" in files.columns else [None] * len(files)
        recorded = {p: (b, m) for p, b, m in zip(files["path"].to_list(), files["bytes"].to_list(), mtimes)}
    added, changed, lines = [], [], []
    for e in entries:
        was = recorded.pop(e.rel, None)
        if was is None:
            added.append(e.rel)
        elif was != (e.size, e.mtime_ns):  # a null mtime (racy, unreadable, old table) never matches a file's
            changed.append(e.rel)
        else:
            continue
        lines.append(f"{e.rel}\0{e.size}\0{e.mtime_ns}")
    removed = sorted(recorded)
    lines += [f"{p}\0removed" for p in removed]
    key = sha256_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))[:32] if lines else ""
    return DropZoneChanges(tuple(added), tuple(changed), tuple(removed), len(entries), key)
