"""The lake: paths that cannot escape it, atomic writes, deterministic parquet."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicml import lake as lake_mod
from musicml.lake import (
    Lake,
    PathEscapeError,
    atomic_path,
    read_json,
    safe_join,
    sha256_bytes,
    sha256_file,
    write_bytes,
    write_json,
    write_parquet,
    write_text,
)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name)


# --- safe_join -----------------------------------------------------------------------------


def test_safe_join_plain_parts_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    assert safe_join(root, "a", "b.parquet") == root.resolve() / "a" / "b.parquet"
    assert safe_join(root) == root.resolve()
    # ".." that stays inside the root is harmless
    assert safe_join(root, "a/../b") == root.resolve() / "b"


@pytest.mark.parametrize("parts", [("..",), ("..", "x"), ("a", "..", "..", "x"), ("a/../../x",), ("../lake2/x",)])
def test_safe_join_refuses_dotdot_escapes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    with pytest.raises(PathEscapeError, match="escapes the lake"):
        safe_join(root, *parts)


@pytest.mark.parametrize("part", ["/etc/passwd", "/tmp"])
def test_safe_join_refuses_absolute_parts(tmp_path: Path, part: str) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    with pytest.raises(PathEscapeError, match="absolute path"):
        safe_join(root, "models", part)


def test_safe_join_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError):
        safe_join(root, "link", "file.txt")
    with pytest.raises(PathEscapeError):
        safe_join(root, "link")


def test_safe_join_allows_symlink_inside(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_join(root, "alias", "f") == (root / "real" / "f").resolve()


def test_path_escape_error_is_value_error() -> None:
    assert issubclass(PathEscapeError, ValueError)


# --- Lake ------------------------------------------------------------------------------------


def test_lake_from_env_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSICML_RAW_DIR", raising=False)
    monkeypatch.setenv("MUSICML_LAKE", str(tmp_path / "envlake"))
    lk = Lake.from_env()
    assert lk.root == (tmp_path / "envlake").resolve()
    assert lk.raw_dir == lk.root / "raw"
    monkeypatch.setenv("MUSICML_RAW_DIR", str(tmp_path / "drop"))
    lk = Lake.from_env(tmp_path / "argroot")
    assert lk.root == (tmp_path / "argroot").resolve()
    assert lk.raw_dir == (tmp_path / "drop").resolve()
    lk = Lake.from_env(tmp_path / "argroot", raw_dir=tmp_path / "argdrop")
    assert lk.raw_dir == (tmp_path / "argdrop").resolve()
    assert lk.catalog_path == lk.root / "catalog.duckdb"


def test_lake_mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    lk = Lake.from_env(tmp_path)
    assert lk.mlflow_uri == f"sqlite:///{lk.root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert lk.mlflow_uri == "sqlite:///elsewhere.db"


def test_lake_path_and_dir(tmp_path: Path) -> None:
    lk = Lake.from_env(tmp_path / "lake")
    d = lk.dir("curated", "x")
    assert d.is_dir() and d == lk.root / "curated" / "x"
    assert lk.path("shards", "manifest.json") == lk.root / "shards" / "manifest.json"
    with pytest.raises(PathEscapeError):
        lk.path("..", "outside")
    with pytest.raises(PathEscapeError):
        lk.dir("/abs")
    assert not (tmp_path / "outside").exists()


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_path_success_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"new")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert _leftovers(target.parent) == []


def test_atomic_path_failure_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_failure_on_keyboard_interrupt(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_bytes_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    with pytest.raises(TypeError):
        write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_write_parquet_failure_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "t.parquet"
    write_parquet(target, pa.table({"a": [1]}))
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lake_mod.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_parquet(target, pa.table({"a": [2]}))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_write_text_and_json_round_trip(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "héllo ♪")
    assert (tmp_path / "a.txt").read_bytes() == "héllo ♪".encode()
    obj = {"b": 1, "a": [1, 2], "p": Path("x/y")}
    write_json(tmp_path / "o.json", obj)
    text = (tmp_path / "o.json").read_text()
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')  # sorted keys
    assert read_json(tmp_path / "o.json") == {"a": [1, 2], "b": 1, "p": "x/y"}
    assert _leftovers(tmp_path) == []


# --- parquet determinism and hashes ----------------------------------------------------------


def _table() -> pa.Table:
    return pa.table({"id": ["b", "a", "c"], "x": [3, 1, 2], "tokens": [[1, 2], [], [3]]})


def test_write_parquet_deterministic_bytes(tmp_path: Path) -> None:
    write_parquet(tmp_path / "one.parquet", _table())
    write_parquet(tmp_path / "two.parquet", _table())
    one, two = (tmp_path / "one.parquet").read_bytes(), (tmp_path / "two.parquet").read_bytes()
    assert one == two
    # re-writing the same path gives the same bytes again
    write_parquet(tmp_path / "one.parquet", _table())
    assert (tmp_path / "one.parquet").read_bytes() == one
    assert pq.read_table(tmp_path / "one.parquet").equals(_table())
    assert pq.read_metadata(tmp_path / "one.parquet").row_group(0).column(0).compression == "ZSTD"


def test_write_parquet_accepts_polars_and_is_deterministic(tmp_path: Path) -> None:
    df = pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", None]})
    write_parquet(tmp_path / "p1.parquet", df)
    write_parquet(tmp_path / "p2.parquet", df.clone())
    assert (tmp_path / "p1.parquet").read_bytes() == (tmp_path / "p2.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "p1.parquet").equals(df)


def test_sha256_helpers_agree(tmp_path: Path) -> None:
    data = os.urandom(3000)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1000) == sha256_bytes(data)
    assert sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
