"""An ingestion request (``IngestConfig.paths``, as the drop-zone sensor sends it) at a cost that
grows with what changed, not with the drop zone.

A request re-examines the named paths. A whole ingestion would also re-account every other
entry; here only the entries whose row could come out differently are examined:

- the named paths that exist, and entries of the listing that have no row yet (arrivals);
- rows that the whole ingestion would not take as they are: of another parser version, never
  hashed (rejects of odd entries, empty files), of a format or size the configuration no longer
  accepts, or whose directory entry is no longer a plain regular file;
- every row sharing bytes with any of these, before or after, or with a row whose entry is
  gone (which of them is the first copy, and what the duplicates name, may change).

The rest is carried over with vectorized table operations, so the per-entry cost of the drop
zone is one directory entry of the listing (names and entry types, no ``stat``) and a few table
operations per row. :func:`plan` returns None where the listing alone cannot tell (a folder
that cannot be listed, two names shown alike): the caller then accounts for the whole scan,
with the same result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import polars as pl

from musicml.ingest.files import FILE_SCHEMA, PARSER_VERSION, IngestConfig, format_of, hidden
from musicml.ingest.scan import Entry, classify, display_name, read_regular
from musicml.lake import sha256_bytes

PREREAD_BYTES = 64 * 1024 * 1024  # bytes read while planning kept for the parse (the rest is read again)


@dataclass
class Plan:
    """The entries to account for (sorted, as the scan sorts them), the previous rows they may
    consult (``subset``), the rows carried over untouched, and files already read."""

    entries: list[Entry]
    subset: pl.DataFrame
    untouched: pl.DataFrame
    preread: dict[str, bytes] = field(default_factory=dict)


def listing(raw_dir: Path) -> dict[str, tuple[str, str, bool]] | None:
    """``display path -> (path, name as listed, is a regular file by its directory entry)`` of
    every entry under ``raw_dir`` but folders (walked, never followed when they are links); no
    ``stat`` where the file system gives entry types. None where the whole scan is needed: a
    folder that cannot be listed (its row comes from :func:`musicml.ingest.scan.scan`) or two
    names shown alike."""
    out: dict[str, tuple[str, str, bool]] = {}
    folders = [("", os.fspath(raw_dir))]
    while folders:
        prefix, folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                items = list(it)
        except OSError:
            if prefix:
                return None
            continue
        for item in items:
            rel = prefix + item.name
            try:
                if item.is_dir(follow_symlinks=False):
                    folders.append((rel + "/", item.path))
                    continue
                regular = item.is_file(follow_symlinks=False)
            except OSError:
                regular = False
            shown = rel if rel.isascii() else display_name(rel)
            if shown in out:
                return None
            out[shown] = (item.path, rel, regular)
    return out


def plan(raw_dir: Path, wanted: set[str], previous: pl.DataFrame | None, config: IngestConfig) -> Plan | None:
    """What a request for ``wanted`` must account for; None: account for the whole listing.
    A requested name is only ever looked up in the listing (``..``, absolute or odd names find
    nothing there), so nothing outside the drop zone is looked at."""
    listed = listing(raw_dir) if Path(raw_dir).is_dir() else {}
    if listed is None:
        return None
    prev = _previous(previous)
    paths, digests = prev["path"].to_list(), prev["content_hash"].to_list()
    index = {p: i for i, p in enumerate(paths)}
    # rows a whole ingestion would not take as they are (never hashed, another parser version, a
    # format or size no longer accepted), and rows whose entry is gone or no longer a plain file
    stale = prev.select(pl.col("content_hash").is_null() | (pl.col("parser_version") != PARSER_VERSION)
                        | ~pl.col("format").is_in(list(config.formats))
                        | (pl.col("bytes") > config.max_file_bytes)).to_series().to_list()
    examined = {p for p in wanted if p in listed} | {p for p in listed if p not in index}
    gone: list[int] = []
    for i, p in enumerate(paths):
        seen = listed.get(p)
        if seen is None:
            gone.append(i)
        elif stale[i] or not seen[2]:
            examined.add(p)

    entries = {rel: _entry(listed[rel], raw_dir) for rel in examined}
    hashes = {digests[i] for i in gone} | {digests[index[p]] for p in examined | wanted if p in index}
    preread: dict[str, bytes] = {}
    budget = PREREAD_BYTES
    for rel in sorted(examined):
        i = index.get(rel)
        digest, data = _digest(entries[rel], None if i is None else prev.row(i, named=True), config)
        hashes.add(digest)
        if data is not None and len(data) <= budget:
            preread[rel], budget = data, budget - len(data)
    hashes.discard(None)
    chosen = {index[p] for p in examined | wanted if p in index} | {i for i, d in enumerate(digests) if d in hashes}
    subset = prev[sorted(chosen)]
    sizes, mtimes = subset["bytes"].to_list(), subset["mtime_ns"].to_list()
    for rel, size, mtime in zip(subset["path"].to_list(), sizes, mtimes):
        if rel in listed and rel not in entries:  # carried, but accounted for in order with the others
            path, _, is_regular = listed[rel]
            entries[rel] = Entry(path, rel, size, None, mtime) if is_regular else _entry(listed[rel], raw_dir)
    keep = [True] * len(paths)
    for i in chain(gone, (index[p] for p in entries if p in index)):
        keep[i] = False
    untouched = prev.filter(pl.Series(keep, dtype=pl.Boolean)) if paths else prev
    return Plan(sorted(entries.values(), key=lambda e: e.rel), subset, untouched, preread)


def _previous(previous: pl.DataFrame | None) -> pl.DataFrame:
    """The previous rows in ``FILE_SCHEMA`` (missing columns null), one per path (the last)."""
    if previous is None or not len(previous):
        return pl.DataFrame(schema=FILE_SCHEMA)
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in FILE_SCHEMA.items() if c not in previous.columns]
    table = previous if previous.schema == FILE_SCHEMA else \
        previous.with_columns(missing).select(list(FILE_SCHEMA)).cast(FILE_SCHEMA)
    if table["path"].n_unique() < len(table):
        table = table.unique("path", keep="last", maintain_order=True)
    return table


def _entry(listed: tuple[str, str, bool], raw_dir: Path) -> Entry:
    path, name, _ = listed
    return classify(path, name, raw_dir)


def _digest(entry: Entry, seen: dict | None, config: IngestConfig) -> tuple[str | None, bytes | None]:
    """The content hash an entry will be accounted under (its previous row's, ``seen``, where
    that row's stat matches and ``reuse_stat``, else read), and the bytes read; Nones where it
    is not read (as :func:`musicml.ingest.files.ingest` would not read it)."""
    rel = entry.rel
    if entry.problem or hidden(rel) or format_of(rel) not in config.formats or entry.size > config.max_file_bytes:
        return None, None
    if (seen is not None and config.reuse_stat and seen["mtime_ns"] is not None and seen["content_hash"] is not None
            and seen["parser_version"] == PARSER_VERSION
            and (seen["bytes"], seen["mtime_ns"]) == (entry.size, entry.mtime_ns)):
        return seen["content_hash"], None
    try:
        data = read_regular(entry.fspath, config.max_file_bytes)
    except OSError:
        return None, None
    if not data or len(data) > config.max_file_bytes:
        return None, None
    return sha256_bytes(data), data
