"""A DuckDB catalog over the lake's parquet: ``scores``, ``pieces``, ``splits``, ``shards`` ..."""

from __future__ import annotations

from pathlib import Path

import duckdb

from musicml.ingest.parsed import table_paths
from musicml.lake import Lake, atomic_path

# view name -> parquet path (relative to the lake root; a manifest: the parquet it lists); a view is
# created only if its file exists
VIEWS: dict[str, str] = {
    "scores": "ingest/files.parquet",
    "pieces": "parsed/pieces/manifest.json",  # the pieces table's parts (musicml.ingest.parsed)
    "notes": "parsed/notes/manifest.json",  # the note table's parts
    "works": "curated/deduped.parquet",
    "augmented": "curated/augmented.parquet",
    "splits": "curated/splits.parquet",
    "shards": "shards/shards.parquet",
}


def refresh(lake: Lake) -> list[str]:
    """(Re)create the views whose parquet exists; returns the view names."""
    made = []
    with atomic_path(lake.catalog_path) as tmp:  # a unique temporary name: concurrent refreshes never collide
        con = duckdb.connect(str(tmp))
        try:
            for name, rel in VIEWS.items():
                path = lake.root / rel
                if path.exists():
                    files = table_paths(lake, path.parent.name) if path.suffix == ".json" else [path]
                    listed = ", ".join(f"'{_sql_str(f)}'" for f in files)
                    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")
                    made.append(name)
        finally:
            con.close()
    return made


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def query(lake: Lake, sql: str) -> list[tuple]:
    """Run read-only SQL against the catalog."""
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
