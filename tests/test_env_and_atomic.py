"""Environment variables read in one place (musicml.env), and the one atomic-write helper."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from musicml import catalog, checkpoint, env
from musicml.lake import Lake, atomic_path, temp_name, write_parquet


def test_env_defaults_when_unset(monkeypatch) -> None:
    for name in (env.LAKE, env.RAW_DIR, env.TRACKING_URI, env.SOUNDFONT, env.CORPORA, "RANK", "LOCAL_RANK",
                 "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert env.lake_root() == Path("data_lake")
    assert env.raw_dir() is None and env.tracking_uri() is None and env.soundfont() is None
    assert env.corpora_dir() == Path(env.__file__).resolve().parents[2] / "shared" / "corpora"
    assert env.distributed() == (0, 0, 1)


def test_env_values_and_empty_means_unset(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(env.LAKE, str(tmp_path / "lk"))
    monkeypatch.setenv(env.RAW_DIR, "")
    monkeypatch.setenv(env.TRACKING_URI, "sqlite:///x.db")
    monkeypatch.setenv(env.SOUNDFONT, str(tmp_path / "sf.sf2"))
    monkeypatch.setenv(env.CORPORA, str(tmp_path / "corpora"))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert env.lake_root() == tmp_path / "lk" and env.raw_dir() is None
    assert env.tracking_uri() == "sqlite:///x.db" and env.soundfont() == tmp_path / "sf.sf2"
    assert env.corpora_dir() == tmp_path / "corpora"
    assert env.distributed() == env.Distributed(rank=3, local_rank=1, world_size=4)
    lake = Lake.from_env()
    assert lake.root == (tmp_path / "lk").resolve() and lake.raw_dir == lake.root / "raw"
    assert lake.mlflow_uri == "sqlite:///x.db"


def test_bad_torchrun_variables_raise(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError):
        env.distributed()


def test_temp_names_are_unique_beside_the_target_and_keep_its_suffix(tmp_path) -> None:
    target = tmp_path / "token_bytes.npy"
    names = {temp_name(target) for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(".token_bytes.npy.") and name.suffix == ".npy"
    with atomic_path(target) as tmp:
        np.save(tmp, np.arange(3), allow_pickle=False)  # np.save would add .npy to a name without it
    assert np.load(target).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token_bytes.npy"]


def test_atomic_files_get_the_usual_permissions(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_two_writers_of_one_file_never_collide(tmp_path) -> None:
    """Each writer holds its own temporary name while both are writing; the last rename wins whole."""
    target = tmp_path / "out.txt"
    inside = threading.Barrier(2)
    seen: list[Path] = []

    def writer(text: str) -> None:
        with atomic_path(target) as tmp:
            tmp.write_text(text)
            seen.append(tmp)
            inside.wait(timeout=10)  # both temporary files exist at once

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a" * 1000, "b" * 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 2
    assert target.read_text() in ("a" * 1000, "b" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_concurrent_catalog_refreshes_leave_one_catalog(tmp_path) -> None:
    import polars as pl

    lake = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    write_parquet(lake.path("ingest", "files.parquet"), pl.DataFrame({"path": ["a.abc"], "status": ["ingested"]}))
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            catalog.refresh(lake)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert catalog.query(lake, "select count(*) from scores") == [(1,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.duckdb", "ingest"]


def test_checkpoint_save_failure_leaves_nothing(tmp_path) -> None:
    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot save")

    with pytest.raises(Exception, match="cannot save"):
        checkpoint.save({"x": Unsaveable()}, tmp_path / "step_000001.pt")
    assert list(tmp_path.iterdir()) == []


def test_read_frame_sees_whole_files_while_another_process_replaces_them(tmp_path) -> None:
    """One open handle per read: every read gives one whole version of a file that another
    process keeps replacing atomically (polars reading by path can mix two versions)."""
    import subprocess
    import sys

    import polars as pl

    from musicml.lake import read_frame

    path = tmp_path / "t.parquet"
    write_parquet(path, pl.DataFrame({"a": [0]}))
    code = ("import sys, polars as pl; from musicml.lake import write_parquet\n"
            "for i in range(400): write_parquet(sys.argv[1], pl.DataFrame({'a': list(range(1 + (i % 7) * 2000))}))")
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)])
    sizes = set()
    while writer.poll() is None:
        frame = read_frame(path)
        assert frame["a"].to_list() == list(range(len(frame)))  # a whole version, never a mix
        sizes.add(len(frame))
    assert writer.returncode == 0 and len(sizes) > 1
    assert read_frame(path, columns=["a"]).columns == ["a"]
