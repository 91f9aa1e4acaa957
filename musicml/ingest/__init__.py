"""Ingestion (assets ``raw_scores`` and ``parsed_scores``): every entry of the drop zone accounted
for (:mod:`~musicml.ingest.scan`), each file parsed once, in isolation
(:mod:`~musicml.ingest.isolation`), into pieces and the normalized note table."""

from __future__ import annotations

from musicml.ingest.files import (  # noqa: F401
    FILE_SCHEMA,
    MAX_PROBLEMS,
    PARSER_VERSION,
    PIECE_SCHEMA,
    DropZoneChanges,
    IngestConfig,
    IngestResult,
    ParsedFile,
    Piece,
    cache_paths,
    check_limits,
    drop_zone_changes,
    files_table_path,
    ingest,
    load_parsed,
    parse_bytes,
    piece_id,
)
from musicml.ingest.scan import Entry, fingerprint, scan  # noqa: F401
