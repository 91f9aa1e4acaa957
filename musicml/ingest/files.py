"""Ingestion: every file in the drop zone becomes exactly one row, and readable ones become pieces.

A *file* is what the user dropped; a *piece* is one score inside it (ABC files often hold many
tunes). Parsing results are cached by content hash, so re-running after adding files parses
only the new ones. Bad input never raises out of :func:`ingest`: it becomes a ``rejected`` row
whose reason names the file and, for text, the line and column.

Safety: the scan opens nothing (:mod:`musicml.ingest.scan`: FIFOs, devices, sockets, dangling
or looping links and undecodable names get rows without being read); only regular files are
read, at most ``max_file_bytes``; each file is parsed in a worker process under a time and a
memory limit (:mod:`musicml.ingest.isolation`), and every score is checked against limits on
notes, tracks, duration and text size, so one hostile file costs a rejected row, not the run.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import symusic

from musicml.formats import FORMATS, ScoreError, detect_format, get_format
from musicml.formats.base import Piece, Reading  # noqa: F401  (Piece: re-exported by musicml.ingest)
from musicml.ingest.note_table import (
    NOTE_SCHEMA,
    note_arrays,
    notes_arrow,
    piece_order,
    piece_stats,
)
from musicml.ingest.scan import Entry, read_regular, scan
from musicml.lake import Lake, atomic_path, sha256_bytes
from musicml.threads import pool_workers

PARSER_VERSION = "3"  # 3: the parse cache is written in batches of files
MAX_PROBLEMS = 20
BATCH_FILES = 64  # files a worker parses per message, cached together
BATCH_BYTES = 8 * 1024 * 1024  # and at most this many input bytes per batch
PIECES_SUFFIX, NOTES_SUFFIX = ".pieces.arrow", ".notes.arrow"  # the two files of a cache batch

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
    max_memory_bytes: int = 2 * 1024**3  # address space of a worker process; 0: unlimited
    workers: int = 0  # reader processes; 0: one per available core
    isolate: bool = True  # parse in worker processes (False: in this process, for debugging)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["formats"] = list(self.formats)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> IngestConfig:
        d = dict(d)
        d["formats"] = tuple(d.get("formats", FORMATS))
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
    if fmt == "midi":
        _check_midi_header(data, source)
    parsed = get_format(fmt).read(data, source, grid=config.midi_grid, max_pieces=config.max_pieces,
                                  check=lambda score, where: check_limits(score, where, config))
    notes = sum(p.score.note_num() for p in parsed.pieces)
    if notes > config.max_notes:
        raise ScoreError(source, f"too many notes ({notes} > max_notes {config.max_notes})")
    text_bytes = sum(len(p.text.encode("utf-8")) for p in parsed.pieces)
    if text_bytes > config.max_text_bytes:
        raise ScoreError(source, f"canonical text too large ({text_bytes} bytes > max_text_bytes "
                                 f"{config.max_text_bytes})")
    return parsed


def _check_midi_header(data: bytes, source: str) -> None:
    """Refuse what symusic would mis-handle: a header that says 0 ticks per quarter note."""
    if data[:4] == b"MThd" and len(data) >= 14:
        division = int.from_bytes(data[12:14], "big")
        if division == 0:
            raise ScoreError(source, "MIDI header says 0 ticks per quarter note (division 0)")


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

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.files["status"].value_counts().iter_rows()}


def ingest(
    lake: Lake,
    config: IngestConfig | None = None,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> IngestResult:
    """Account for every entry of ``lake.raw_dir`` and parse the new files into the cache.

    Files already known by (content hash, format) reuse their earlier row; the rest are parsed
    in isolated worker processes (``config.isolate``), answers coming back in any order.
    """
    config = config or IngestConfig()
    t0 = time.perf_counter()
    raw_dir = lake.raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    known: dict[tuple[str, str], dict] = {}
    if previous is not None and len(previous):
        for row in previous.filter(pl.col("parser_version") == PARSER_VERSION).iter_rows(named=True):
            if row["status"] in ("ingested", "rejected") and row["content_hash"]:
                known.setdefault((row["content_hash"], row["format"]), row)
    entries = scan(raw_dir)
    rows: list[dict | None] = [None] * len(entries)
    first_path: dict[tuple[str, str], str] = {}
    todo: dict[int, tuple[str, str, str, bytes]] = {}
    reused = done = 0
    for i, entry in enumerate(entries):
        row, job = _account(entry, config, known, first_path)
        if job is not None:
            todo[i] = job
            continue
        rows[i] = row
        reused += row["status"] != "duplicate" and (row["content_hash"], row["format"]) in known
        done += 1
        if progress:
            progress(done, len(entries), entry.rel)
    for i, reply in _parse_all(lake, todo, config):
        rel, fmt, digest, data = todo[i]
        rows[i] = _row(rel, fmt, len(data), digest, **reply)
        done += 1
        if progress:
            progress(done, len(entries), rel)
    df = pl.DataFrame(rows, schema=FILE_SCHEMA) if rows else pl.DataFrame(schema=FILE_SCHEMA)
    return IngestResult(df, len(todo), reused, time.perf_counter() - t0)


def _account(entry: Entry, config: IngestConfig, known: dict, first_path: dict
             ) -> tuple[dict | None, tuple[str, str, str, bytes] | None]:
    """The row of an entry that needs no parsing, or the ``(rel, fmt, digest, data)`` to parse."""
    rel, fmt = entry.rel, detect_format(entry.rel)
    if entry.problem:
        return _row(rel, fmt, entry.size, None, "rejected", f"{rel}: {entry.problem}"), None
    if any(part.startswith(".") for part in Path(rel).parts):
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: hidden file or folder (name starts with '.'), not read"), None
    if fmt is None or fmt not in config.formats:
        accepted = ", ".join(sorted(e for e, f in _extensions().items() if f in config.formats))
        suffix = Path(rel).suffix or "(none)"
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: unknown or disabled file type {suffix!r} (accepted: {accepted})"), None
    if entry.size > config.max_file_bytes:
        return _row(rel, fmt, entry.size, None, "rejected",
                    f"{rel}: file too large ({entry.size} bytes > max_file_bytes {config.max_file_bytes})"), None
    try:
        data = read_regular(entry.path, config.max_file_bytes)
    except OSError as err:
        return _row(rel, fmt, entry.size, None, "rejected", f"{rel}: cannot read file: {err.strerror or err}"), None
    if len(data) > config.max_file_bytes:
        return _row(rel, fmt, len(data), None, "rejected",
                    f"{rel}: file too large (> max_file_bytes {config.max_file_bytes})"), None
    if not data:
        return _row(rel, fmt, 0, None, "rejected", f"{rel}: empty file (0 bytes)"), None
    digest = sha256_bytes(data)
    key = (digest, fmt)  # byte-identical files of different formats are each read as their own
    if key in first_path:
        return _row(rel, fmt, len(data), digest, "duplicate", f"{rel}: identical bytes to {first_path[key]}"), None
    first_path[key] = rel
    if key in known:
        prev = known[key]
        reason = prev["reason"] if prev["status"] == "rejected" else ""
        problems = list(prev["problems"] or [])
        if prev["path"] != rel:  # the same bytes under a new name: messages name the new file
            reason = reason.replace(prev["path"], rel)
            problems = [p.replace(prev["path"], rel) for p in problems]
        return _row(rel, fmt, len(data), digest, prev["status"], reason, encoding=prev["encoding"],
                    n_pieces=prev["n_pieces"], problems=problems), None
    return None, (rel, fmt, digest, data)


def _parse_all(lake: Lake, todo: dict[int, tuple[str, str, str, bytes]], config: IngestConfig):
    """``(index, reply)`` for every file to parse: in worker processes unless ``isolate`` is off
    (then in this process, in cache batches alike)."""
    if not todo:
        return
    cfg = config.to_dict()
    if not config.isolate:
        items = list(todo.items())
        for start in range(0, len(items), BATCH_FILES):
            batch = CacheBatch(str(lake.root), cfg)
            chunk = items[start:start + BATCH_FILES]
            replies = [batch.add(data, fmt, rel, digest) for _, (rel, fmt, digest, data) in chunk]
            failed = batch.write()
            for k, ((i, _), reply) in enumerate(zip(chunk, replies)):
                yield i, _rejected(failed[k]) if k in failed else reply
        return
    from musicml.ingest.isolation import Task, pool

    tasks = {i: Task(str(lake.root), rel, fmt, digest, data, cfg) for i, (rel, fmt, digest, data) in todo.items()}
    index = {id(task): i for i, task in tasks.items()}
    workers = pool_workers(config.workers, len(tasks))  # never more than the cores
    runs = pool(workers, config.max_memory_bytes).run(tasks.values(), config.parse_timeout_s,
                                                       batch_files=BATCH_FILES, batch_bytes=BATCH_BYTES)
    for task, reply in runs:
        yield index[id(task)], reply


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
    notes: list[tuple[str, dict]]


class CacheBatch:
    """Files parsed one by one (:meth:`add`) and cached together (:meth:`write`): one pieces and
    one notes file per batch (Arrow IPC), so a small file costs no files of its own."""

    def __init__(self, lake_root: str, config: dict) -> None:
        self.lake = Lake(Path(lake_root), Path(lake_root) / "raw")
        self.config = IngestConfig.from_dict(config)
        self.parsed: dict[int, _Parsed] = {}  # add order -> what to write
        self.n = 0

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
        pieces.append({"piece_id": pid, "content_hash": digest, "path": rel, "format": fmt, "index": p.index,
                       "line": p.line, "title": p.title, "text": p.text,
                       "text_bytes": len(p.text.encode("utf-8")), **piece_stats(p.score)})
        notes.append((pid, note_arrays(p.score)))
    return _Parsed(digest, rel, fmt, pieces, notes)


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
    from musicml.formats import EXTENSIONS

    return EXTENSIONS


def piece_id(content_hash: str, index: int) -> str:
    return f"{content_hash[:16]}-{index:04d}"


def _cache_dir(lake: Lake) -> Path:
    return lake.dir("ingest", "cache", f"v{PARSER_VERSION}")


def _write_cache(lake: Lake, entries: list[_Parsed]) -> None:
    """One batch: its notes, then its pieces (the pieces file is the batch's index entry, so a
    reader that sees it finds the notes), each written atomically as an Arrow IPC file with lz4
    (a tenth of parquet's write time for the same rows). The name hashes the batch's members."""
    members = sorted(f"{e.digest}.{e.fmt}" for e in entries)
    name = sha256_bytes("\n".join(members).encode())[:32]
    base = _cache_dir(lake)
    rows = [row for e in entries for row in e.pieces]
    _write_ipc(base / f"{name}{NOTES_SUFFIX}", notes_arrow([n for e in entries for n in e.notes]))
    _write_ipc(base / f"{name}{PIECES_SUFFIX}", pl.DataFrame(rows, schema=PIECE_SCHEMA).to_arrow())


_IPC_OPTIONS = None


def _write_ipc(path: Path, table: pa.Table) -> None:
    """On this thread (Arrow's thread pool would reserve address space a worker's limit counts)."""
    global _IPC_OPTIONS
    if _IPC_OPTIONS is None:
        _IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa.ipc.new_file(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)


def _cache_index(lake: Lake) -> pl.DataFrame:
    """``content_hash, format, batch`` (the batch's pieces file) of every cached file, one batch
    each (the first by name where two hold the same file)."""
    files = sorted(str(p) for p in _cache_dir(lake).glob(f"*{PIECES_SUFFIX}"))
    if not files:
        return pl.DataFrame(schema={"content_hash": pl.String, "format": pl.String, "batch": pl.String})
    return (pl.scan_ipc(files, include_file_paths="batch").select("content_hash", "format", "batch")
            .unique().collect().sort("batch").unique(["content_hash", "format"], keep="first"))


def cache_paths(lake: Lake, digest: str, fmt: str) -> tuple[Path, Path]:
    """The pieces and notes files of the cache batch holding these bytes read as ``fmt``;
    ``FileNotFoundError`` when none does."""
    hit = _cache_index(lake).filter((pl.col("content_hash") == digest) & (pl.col("format") == fmt))
    if not len(hit):
        raise FileNotFoundError(f"no parse cache for {digest}.{fmt} under {_cache_dir(lake)}")
    pieces = Path(hit["batch"][0])
    return pieces, pieces.with_name(pieces.name.replace(PIECES_SUFFIX, NOTES_SUFFIX))


def load_parsed(lake: Lake, files: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pieces and notes of every ``ingested`` file, from the cache; paths as they are now."""
    ingested = files.filter(pl.col("status") == "ingested").select("path", "content_hash", "format")
    if not len(ingested):
        return pl.DataFrame(schema=PIECE_SCHEMA), pl.DataFrame(schema=NOTE_SCHEMA)
    wanted = ingested.unique(["content_hash", "format"]).join(_cache_index(lake), on=["content_hash", "format"],
                                                              how="left")
    missing = wanted.filter(pl.col("batch").is_null())
    if len(missing):
        raise FileNotFoundError(f"no parse cache for {len(missing)} ingested file(s), e.g. "
                                f"{missing['path'][0]!r} ({missing['content_hash'][0]}); re-ingest them")
    batches = sorted(set(wanted["batch"]))
    keys = wanted.select("content_hash", "format", "batch")
    held = pl.scan_ipc(batches, include_file_paths="batch").collect()  # every piece of those batches
    pieces = held.join(keys, on=["content_hash", "format", "batch"])
    chosen = dict(pieces.group_by("batch").agg("piece_id").iter_rows())
    sizes = dict(held.group_by("batch").len().iter_rows())
    parts = []
    for b in batches:  # a batch's notes, only those of its chosen pieces where it holds others too
        lf = pl.scan_ipc(b.replace(PIECES_SUFFIX, NOTES_SUFFIX))
        ids = chosen.get(b, [])
        parts.append(lf if len(ids) == sizes[b] else lf.filter(pl.col("piece_id").is_in(ids)))
    notes = pl.concat(parts).collect() if parts else pl.DataFrame(schema=NOTE_SCHEMA)
    paths = ingested.select("content_hash", "format", pl.col("path").alias("now"))
    pieces = pieces.join(paths, on=["content_hash", "format"]).with_columns(pl.col("now").alias("path"))
    return (pieces.select(list(PIECE_SCHEMA)).cast(PIECE_SCHEMA).sort(["piece_id", "path"]),
            notes.select(list(NOTE_SCHEMA)).cast(NOTE_SCHEMA)[piece_order(notes["piece_id"])])
