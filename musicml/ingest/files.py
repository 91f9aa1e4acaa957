"""Ingestion: every file in the drop zone becomes exactly one row, and readable ones become pieces.

A *file* is what the user dropped; a *piece* is one score inside it (ABC files often hold many
tunes). Parsing results are cached by content hash, so re-running after adding files parses
only the new ones. Bad input never raises out of :func:`ingest`: it becomes a ``rejected`` row
whose reason names the file and, for text, the line and column.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import symusic

from musicml.formats import FORMATS, ScoreError, detect_format
from musicml.formats.abc import read_abc
from musicml.formats.midi import load_midi
from musicml.formats.text import decode_text
from musicml.ingest.note_table import NOTE_SCHEMA, notes_frame, piece_stats
from musicml.lake import Lake, sha256_bytes, write_parquet

PARSER_VERSION = "1"
MAX_PROBLEMS = 20

FILE_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String,
    "format": pl.String,
    "bytes": pl.Int64,
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
    """What ingestion accepts."""

    max_file_bytes: int = 32 * 1024 * 1024
    formats: tuple[str, ...] = FORMATS
    midi_grid: int = 4  # MIDI text serialization grid: steps per quarter note


@dataclass
class Piece:
    """One score read from a file, with its canonical text form."""

    index: int
    line: int
    title: str
    text: str
    score: symusic.Score


@dataclass
class ParsedFile:
    pieces: list[Piece]
    problems: list[str] = field(default_factory=list)
    encoding: str | None = None


def parse_bytes(data: bytes, fmt: str, source: str, config: IngestConfig | None = None) -> ParsedFile:
    """Read one file's bytes as ``fmt``; raises :class:`ScoreError` when nothing is usable."""
    config = config or IngestConfig()
    if not data:
        raise ScoreError(source, "empty file (0 bytes)")
    if fmt == "midi":
        from musicml.formats.midi import text as miditext

        score = load_midi(data, source)
        text = miditext.encode(score, grid=config.midi_grid)
        return ParsedFile([Piece(0, 0, _midi_title(score, source), text, score)])
    text, encoding = decode_text(data, source)
    if not text.strip():
        raise ScoreError(source, "file holds only whitespace")
    if fmt == "abc":
        tunes, problems = read_abc(text, source)
        pieces = [Piece(t.index, t.line, t.title, t.text, t.score) for t in tunes]
        problems += [m for t in tunes for m in t.messages]
        return ParsedFile(pieces, problems, encoding)
    if fmt == "atex":
        return _parse_alphatex(text, source, encoding)
    raise ScoreError(source, f"unsupported format {fmt!r}")


def _parse_alphatex(text: str, source: str, encoding: str) -> ParsedFile:
    from musicml.formats import alphatex

    result = alphatex.parse(text, source)
    if not result.ok:
        errors = result.errors
        first = "; ".join(str(d) for d in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ScoreError(source, f"malformed alphaTex, {len(errors)} error(s): {first}{more}")
    score = alphatex.to_score(result.ast)
    canonical = alphatex.serialize(result.ast)
    title = _alphatex_title(result.ast)
    return ParsedFile([Piece(0, 1, title, canonical, score)], [str(d) for d in result.warnings], encoding)


def _alphatex_title(ast) -> str:
    """The ``\\title`` of an alphaTex score, or ""."""
    meta = ast.meta("title")
    if meta and meta.values and isinstance(meta.values[0], str):
        return meta.values[0]
    return ""


def _midi_title(score: symusic.Score, source: str) -> str:
    names = [t.name for t in score.tracks if t.name]
    return Path(source).stem if not names else f"{Path(source).stem} ({', '.join(names[:4])})"


@dataclass
class IngestResult:
    files: pl.DataFrame
    parsed: int
    reused: int
    seconds: float

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.files["status"].value_counts().iter_rows()}


def scan(raw_dir: Path) -> list[Path]:
    """Files of the drop zone, sorted; hidden files (names starting with '.') are skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(raw_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        # symlinked folders are not followed but still get a (rejected) row
        out.extend(Path(dirpath) / d for d in dirnames if (Path(dirpath) / d).is_symlink())
        out.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(out, key=lambda p: p.relative_to(raw_dir).as_posix())


def ingest(
    lake: Lake,
    config: IngestConfig | None = None,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> IngestResult:
    """Account for every file in ``lake.raw_dir`` and parse the new ones into the cache."""
    config = config or IngestConfig()
    t0 = time.perf_counter()
    raw_dir = lake.raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    known: dict[str, dict] = {}
    if previous is not None and len(previous):
        for row in previous.filter(pl.col("parser_version") == PARSER_VERSION).iter_rows(named=True):
            if row["status"] in ("ingested", "rejected") and row["content_hash"]:
                known.setdefault(row["content_hash"], row)
    rows: list[dict] = []
    first_path: dict[str, str] = {}
    parsed = reused = 0
    files = scan(raw_dir)
    for i, path in enumerate(files):
        rel = path.relative_to(raw_dir).as_posix()
        row = _ingest_one(lake, path, rel, config, known, first_path)
        if row.pop("_parsed", False):
            parsed += 1
        elif row["status"] != "duplicate" and row["content_hash"] in known:
            reused += 1
        rows.append(row)
        if progress:
            progress(i + 1, len(files), rel)
    df = pl.DataFrame(rows, schema=FILE_SCHEMA) if rows else pl.DataFrame(schema=FILE_SCHEMA)
    return IngestResult(df, parsed, reused, time.perf_counter() - t0)


def _row(rel: str, fmt: str | None, size: int, digest: str | None, status: str, reason: str = "", **kw) -> dict:
    problems = kw.get("problems", [])
    return {
        "path": rel,
        "format": fmt or "unknown",
        "bytes": size,
        "content_hash": digest,
        "status": status,
        "reason": reason,
        "encoding": kw.get("encoding"),
        "n_pieces": kw.get("n_pieces", 0),
        "n_problems": len(problems),
        "problems": problems[:MAX_PROBLEMS],
        "parser_version": PARSER_VERSION,
    }


def _ingest_one(
    lake: Lake, path: Path, rel: str, config: IngestConfig, known: dict[str, dict], first_path: dict[str, str]
) -> dict:
    fmt = detect_format(path)
    try:
        if path.is_symlink():
            target = path.resolve()
            if lake.raw_dir not in target.parents:
                return _row(rel, fmt, 0, None, "rejected", f"{rel}: symbolic link pointing outside the drop zone ({target})")
            if target.is_dir():
                return _row(rel, fmt, 0, None, "rejected", f"{rel}: symbolic link to a folder (not followed)")
        size = path.stat().st_size
        if fmt is None or fmt not in config.formats:
            accepted = ", ".join(sorted(e for e, f in _extensions().items() if f in config.formats))
            return _row(rel, fmt, size, None, "rejected", f"{rel}: unknown or disabled file type {path.suffix or '(none)'!r} (accepted: {accepted})")
        if size > config.max_file_bytes:
            return _row(rel, fmt, size, None, "rejected", f"{rel}: file too large ({size} bytes > max_file_bytes {config.max_file_bytes})")
        data = path.read_bytes()
    except OSError as err:
        return _row(rel, fmt, 0, None, "rejected", f"{rel}: cannot read file: {err.strerror or err}")
    digest = sha256_bytes(data)
    if digest in first_path:
        return _row(rel, fmt, size, digest, "duplicate", f"{rel}: identical bytes to {first_path[digest]}")
    first_path[digest] = rel
    if digest in known:
        prev = known[digest]
        reason = prev["reason"] if prev["status"] == "rejected" else ""
        problems = list(prev["problems"] or [])
        if prev["path"] != rel:  # the same bytes under a new name: messages name the new file
            reason = reason.replace(prev["path"], rel)
            problems = [p.replace(prev["path"], rel) for p in problems]
        return _row(rel, fmt, size, digest, prev["status"], reason, encoding=prev["encoding"],
                    n_pieces=prev["n_pieces"], problems=problems)
    try:
        parsed = parse_bytes(data, fmt, rel, config)
    except ScoreError as err:
        row = _row(rel, fmt, size, digest, "rejected", str(err))
    except Exception as err:  # a reader bug must not stop the run either
        row = _row(rel, fmt, size, digest, "rejected", f"{rel}: reader failed: {type(err).__name__}: {err}")
    else:
        _write_cache(lake, digest, rel, fmt, parsed)
        row = _row(rel, fmt, size, digest, "ingested", "", encoding=parsed.encoding,
                   n_pieces=len(parsed.pieces), problems=parsed.problems)
    row["_parsed"] = True
    return row


def _extensions() -> dict[str, str]:
    from musicml.formats import EXTENSIONS

    return EXTENSIONS


def piece_id(content_hash: str, index: int) -> str:
    return f"{content_hash[:16]}-{index:04d}"


def cache_paths(lake: Lake, digest: str) -> tuple[Path, Path]:
    base = lake.dir("ingest", "cache", f"v{PARSER_VERSION}", digest[:2])
    return base / f"{digest}.pieces.parquet", base / f"{digest}.notes.parquet"


def _write_cache(lake: Lake, digest: str, rel: str, fmt: str, parsed: ParsedFile) -> None:
    piece_rows, scores = [], []
    for p in parsed.pieces:
        pid = piece_id(digest, p.index)
        stats = piece_stats(p.score)
        piece_rows.append({"piece_id": pid, "content_hash": digest, "path": rel, "format": fmt,
                           "index": p.index, "line": p.line, "title": p.title, "text": p.text,
                           "text_bytes": len(p.text.encode("utf-8")), **stats})
        scores.append((pid, p.score))
    pieces_path, notes_path = cache_paths(lake, digest)
    write_parquet(pieces_path, pl.DataFrame(piece_rows, schema=PIECE_SCHEMA))
    write_parquet(notes_path, notes_frame(scores))


def load_parsed(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pieces and notes of every ``ingested`` file, from the cache; paths as they are now."""
    ingested = files.filter(pl.col("status") == "ingested").select("path", "content_hash")
    pieces, notes = [], []
    for rel, digest in ingested.iter_rows():
        pieces_path, notes_path = cache_paths(lake, digest)
        pieces.append(pl.read_parquet(pieces_path).with_columns(pl.lit(rel).alias("path")))
        notes.append(pl.read_parquet(notes_path))
    if not pieces:
        return pl.DataFrame(schema=PIECE_SCHEMA), pl.DataFrame(schema=NOTE_SCHEMA)
    return (pl.concat(pieces).cast(PIECE_SCHEMA).sort("piece_id"),
            pl.concat(notes).cast(NOTE_SCHEMA).sort(["piece_id", "onset", "pitch", "track"]))
