"""The DuckDB catalog: views over the parquet that exists, queryable, a valid DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from musicml.catalog import VIEWS, query, refresh
from musicml.lake import Lake, write_json, write_parquet


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.from_env(tmp_path / "lake")


def _views(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
    finally:
        con.close()


def test_refresh_only_existing_parquet(lake: Lake) -> None:
    write_parquet(lake.path("ingest", "files.parquet"),
                  pl.DataFrame({"path": ["a.abc", "b.mid", "c.txt"], "status": ["ingested", "duplicate", "rejected"]}))
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"work_id": ["w1", "w2"], "split": ["train", "valid"]}))
    made = refresh(lake)
    assert made == ["scores", "splits"]
    assert lake.catalog_path.exists()
    assert _views(lake.catalog_path) == ["scores", "splits"]
    assert not lake.catalog_path.with_suffix(".duckdb.tmp").exists()


def test_query(lake: Lake) -> None:
    write_parquet(lake.path("ingest", "files.parquet"),
                  pl.DataFrame({"path": ["a.abc", "b.mid", "c.txt"], "status": ["ingested", "ingested", "rejected"]}))
    refresh(lake)
    rows = query(lake, "SELECT status, count(*) FROM scores GROUP BY status ORDER BY status")
    assert rows == [("ingested", 2), ("rejected", 1)]
    with pytest.raises(duckdb.Error):
        query(lake, "SELECT * FROM pieces")  # no parquet, no view


def test_query_is_read_only(lake: Lake) -> None:
    write_parquet(lake.path("ingest", "files.parquet"), pl.DataFrame({"path": ["a"]}))
    refresh(lake)
    with pytest.raises(duckdb.Error):
        query(lake, "CREATE TABLE t AS SELECT 1")


def test_refresh_all_views_and_new_data(lake: Lake) -> None:
    for name, rel in VIEWS.items():
        if rel.endswith(".json"):  # a manifest: the view reads the parts it lists
            write_parquet(lake.root / rel.replace("manifest.json", "a.parquet"), pl.DataFrame({"view": [name], "n": [1]}))
            write_json(lake.root / rel, {"parts": ["a.parquet"]})
        else:
            write_parquet(lake.root / rel, pl.DataFrame({"view": [name], "n": [1]}))
    assert refresh(lake) == list(VIEWS)
    for name in VIEWS:
        assert query(lake, f"SELECT view, n FROM {name}") == [(name, 1)]
    # the views read the files when queried: new data shows without a refresh
    write_parquet(lake.root / VIEWS["scores"], pl.DataFrame({"view": ["x", "y"], "n": [1, 2]}))
    assert query(lake, "SELECT sum(n) FROM scores") == [(3,)]
    # a parquet that disappears loses its view on the next refresh
    (lake.root / VIEWS["shards"]).unlink()
    assert "shards" not in refresh(lake)
    assert "shards" not in _views(lake.catalog_path)


def test_refresh_empty_lake_gives_valid_catalog(lake: Lake) -> None:
    lake.root.mkdir(parents=True)
    assert refresh(lake) == []
    assert lake.catalog_path.read_bytes()[8:12] == b"DUCK"  # DuckDB's file magic
    assert _views(lake.catalog_path) == []


def test_path_with_quote(tmp_path: Path) -> None:
    lk = Lake.from_env(tmp_path / "it's a lake")
    write_parquet(lk.path("curated", "splits.parquet"), pl.DataFrame({"work_id": ["w"], "split": ["test"]}))
    assert refresh(lk) == ["splits"]
    assert query(lk, "SELECT split FROM splits") == [("test",)]


def test_catalog_is_valid_duckdb_file(lake: Lake) -> None:
    write_parquet(lake.path("ingest", "files.parquet"), pl.DataFrame({"path": ["a"]}))
    refresh(lake)
    assert lake.catalog_path.read_bytes()[8:12] == b"DUCK"
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (1,)
        assert con.execute("PRAGMA database_list").fetchall()
    finally:
        con.close()
    # a second refresh replaces the file atomically and stays valid
    refresh(lake)
    assert _views(lake.catalog_path) == ["scores"]
