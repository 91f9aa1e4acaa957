"""The batched parse cache: files parsed and cached in batches read back exactly as one by one."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from musicml.ingest import IngestConfig, cache_paths, ingest, load_parsed
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake


def _small_abc() -> list[Path]:
    """music21's smallest ABC files (one short tune each): quick to parse."""
    return sorted(music21_abc_files(), key=lambda f: (f.stat().st_size, f.name))[:8]


def _drop(root: Path, derived, n_abc: int = 6) -> Lake:
    lake = Lake.from_env(root / "lake")
    lake.raw_dir.mkdir(parents=True)
    for p in _small_abc()[:n_abc]:
        shutil.copyfile(p, lake.raw_dir / p.name)
    for i, p in enumerate(derived.midi[:3]):
        shutil.copyfile(p, lake.raw_dir / f"m{i}.mid")
    return lake


def _frames(lake: Lake, config: IngestConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    result = ingest(lake, config)
    assert result.counts().get("ingested", 0) == len(result.files), result.counts()
    pieces, notes = load_parsed(lake, result.files)
    return result.files, pieces, notes


def test_batched_workers_equal_in_process(tmp_path: Path, derived) -> None:
    # one worker, 9 files: batches of 3 (each worker gets a quarter of its share at a time)
    _, p1, n1 = _frames(_drop(tmp_path / "a", derived), IngestConfig(workers=1, parse_timeout_s=60))
    _, p2, n2 = _frames(_drop(tmp_path / "b", derived), IngestConfig(isolate=False))
    assert len(p1) == 9 and len(n1) > 1000
    assert p1.equals(p2)
    assert n1.equals(n2)
    batches = list((tmp_path / "a" / "lake").rglob("*.pieces.arrow"))
    assert max(pl.read_ipc(b)["content_hash"].n_unique() for b in batches) > 1  # files were batched


def test_a_file_cached_in_two_batches_is_read_once(tmp_path: Path, derived) -> None:
    lake = _drop(tmp_path, derived, n_abc=2)
    files, pieces, notes = _frames(lake, IngestConfig(isolate=False))
    first = files["content_hash"][0]
    shutil.copyfile(_small_abc()[7], lake.raw_dir / "new.abc")
    files2, pieces2, notes2 = _frames(lake, IngestConfig(isolate=False))  # no previous: a second batch
    assert len(list(lake.root.rglob("*.pieces.arrow"))) == 2
    assert pieces2["piece_id"].is_unique().all()
    old = pieces2.filter(pl.col("piece_id").is_in(pieces["piece_id"].implode()))
    assert old.equals(pieces)
    assert notes2.filter(pl.col("piece_id").is_in(pieces["piece_id"].implode())).equals(notes)
    assert cache_paths(lake, first, files["format"][0])[1].exists()


def test_missing_cache_is_a_clear_error(tmp_path: Path, derived) -> None:
    lake = _drop(tmp_path, derived, n_abc=1)
    files, _, _ = _frames(lake, IngestConfig(isolate=False))
    with pytest.raises(FileNotFoundError, match="no parse cache for 0" + "0" * 63 + ".midi"):
        cache_paths(lake, "0" * 64, "midi")
    for p in lake.root.rglob("*.arrow"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no parse cache for 4 ingested file"):
        load_parsed(lake, files)
