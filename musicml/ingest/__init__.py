"""Ingestion (assets ``raw_scores`` and ``parsed_scores``): every file of the drop zone accounted for,
parsed once into pieces and the normalized note table."""

from __future__ import annotations

from musicml.ingest.files import (  # noqa: F401
    FILE_SCHEMA,
    MAX_PROBLEMS,
    PARSER_VERSION,
    PIECE_SCHEMA,
    IngestConfig,
    IngestResult,
    ParsedFile,
    Piece,
    cache_paths,
    ingest,
    load_parsed,
    parse_bytes,
    piece_id,
    scan,
)
