"""Re-ingestion by stat: unchanged files are not read, changed ones are, duplicates stay right,
and ``paths`` re-examines only the entries it names."""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from musicml import workflow
from musicml.ingest import (
    IngestConfig,
    drop_zone_changes,
    files,
    ingest,
    load_parsed,
    request,
    scan,
)
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake

OLD_NS = 1_600_000_000 * 10**9  # a modification time long past (mtimes of fresh files are not trusted)
CFG = IngestConfig(isolate=False)  # parsed in this process: these tests are about what is read


@functools.cache
def _tunes() -> list[Path]:
    """Small real files: music21's one-tune ABC files, smallest first."""
    return sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[100:110]


def _age(path: Path, ns: int = OLD_NS) -> None:
    os.utime(path, ns=(ns, ns))


def _lake(tmp_path: Path, n: int = 3) -> Lake:
    """A drop zone of ``n`` real ABC files of music21's corpus, all with an old mtime."""
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    for src in _tunes()[:n]:
        shutil.copyfile(src, lake.raw_dir / src.name)
        _age(lake.raw_dir / src.name)
    return lake


def _one_file(tmp_path: Path):
    """A one-file drop zone ingested once: ``(lake, first result, its path name, its file)``."""
    lake = _lake(tmp_path, 1)
    first = ingest(lake, CFG)
    (name,) = first.files["path"]
    return lake, first, name, lake.raw_dir / name


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files ingestion opens from now on."""
    opened: list[str] = []
    real = files.read_regular

    def counting(path, max_bytes):
        opened.append(Path(path).name)
        return real(path, max_bytes)

    monkeypatch.setattr(files, "read_regular", counting)
    return opened


def _row(result, name: str) -> dict:
    return result.files.filter(pl.col("path") == name).row(0, named=True)


def test_unchanged_files_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path)
    first = ingest(lake, CFG)
    assert first.read == 3 and first.files["mtime_ns"].to_list() == [OLD_NS] * 3
    opened = _reads(monkeypatch)
    again = ingest(lake, CFG, previous=first.files)
    assert opened == [] and again.read == 0 and again.parsed == 0 and again.reused == 3
    assert again.files.equals(first.files)


def test_same_size_new_mtime_is_read_and_parsed_again(tmp_path: Path) -> None:
    lake, first, name, path = _one_file(tmp_path)
    data = path.read_bytes()
    i = data.index(b"T:") + 2  # one letter of the title changed: same size, other bytes
    path.write_bytes(data[:i] + (b"Y" if data[i:i + 1] != b"Y" else b"Z") + data[i + 1:])
    _age(path, OLD_NS + 10**9)
    second = ingest(lake, CFG, previous=first.files)
    assert second.read == 1 and second.parsed == 1
    assert _row(second, name)["bytes"] == len(data)
    assert _row(second, name)["content_hash"] != _row(first, name)["content_hash"]
    assert _row(second, name)["mtime_ns"] == OLD_NS + 10**9


def test_touched_file_is_hashed_again_and_reuses_its_parse(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 1)
    first = ingest(lake, CFG)
    (name,) = first.files["path"]
    _age(lake.raw_dir / name, OLD_NS + 5 * 10**9)
    second = ingest(lake, CFG, previous=first.files)
    assert second.read == 1 and second.parsed == 0 and second.reused == 1
    assert _row(second, name) == {**_row(first, name), "mtime_ns": OLD_NS + 5 * 10**9}


def test_reuse_stat_off_reads_every_file(tmp_path: Path) -> None:
    """A rewrite that keeps size and mtime (a restored mtime) is seen only by reading."""
    lake, first, name, path = _one_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"T:", b"T:X", 1)[:len(data)])
    _age(path)
    trusted = ingest(lake, CFG, previous=first.files)
    assert trusted.read == 0 and _row(trusted, name)["content_hash"] == _row(first, name)["content_hash"]
    checked = ingest(lake, IngestConfig(reuse_stat=False, isolate=False), previous=first.files)
    assert checked.read == 1 and checked.parsed == 1
    assert _row(checked, name)["content_hash"] != _row(first, name)["content_hash"]


def test_fresh_files_record_no_mtime_and_are_read_next_time(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 1)
    (name,) = [e.rel for e in scan(lake.raw_dir)]
    (lake.raw_dir / name).touch()  # modified now: within RACY_NS of the scan
    first = ingest(lake, CFG)
    assert _row(first, name)["mtime_ns"] is None
    second = ingest(lake, CFG, previous=first.files)
    assert second.read == 1 and second.parsed == 0


def test_table_from_before_mtimes_is_read_once(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    first = ingest(lake, CFG)
    old = first.files.drop("mtime_ns")  # as written before the column existed
    second = ingest(lake, CFG, previous=old)
    assert second.read == 3 and second.parsed == 0 and second.files.equals(first.files)


def test_duplicate_becomes_the_file_when_the_earlier_copy_is_removed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path, 1)
    (name,) = [e.rel for e in scan(lake.raw_dir)]
    shutil.copyfile(lake.raw_dir / name, lake.raw_dir / f"z_{name}")
    _age(lake.raw_dir / f"z_{name}")
    first = ingest(lake, CFG)
    assert _row(first, f"z_{name}")["status"] == "duplicate"
    (lake.raw_dir / name).unlink()
    opened = _reads(monkeypatch)
    second = ingest(lake, CFG, previous=first.files)
    assert opened == [] and second.parsed == 0
    assert _row(second, f"z_{name}")["status"] == "ingested"
    pieces, _ = load_parsed(lake, second.files)
    assert set(pieces["path"]) == {f"z_{name}"}

    shutil.copyfile(lake.raw_dir / f"z_{name}", lake.raw_dir / f"a_{name}")  # a new copy sorted first
    third = ingest(lake, CFG, previous=second.files)
    assert third.read == 1 and third.parsed == 0
    assert _row(third, f"a_{name}")["status"] == "ingested"
    assert _row(third, f"z_{name}")["status"] == "duplicate"
    assert _row(third, f"z_{name}")["reason"] == f"z_{name}: identical bytes to a_{name}"


def test_paths_reexamine_only_those_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path, 3)
    first = ingest(lake, CFG)
    a, b, c = first.files["path"]
    (lake.raw_dir / a).write_bytes((lake.raw_dir / a).read_bytes() + b"\n")  # changed, not named
    (lake.raw_dir / b).unlink()  # removed, named
    new = _tunes()[3]
    shutil.copyfile(new, lake.raw_dir / new.name)  # added, named
    _age(lake.raw_dir / new.name)
    scan_module = importlib.import_module("musicml.ingest.scan")  # the module, not the function
    stat_calls: list[str] = []
    real = scan_module.classify
    monkeypatch.setattr(scan_module, "classify", lambda p, rel, raw: stat_calls.append(rel) or real(p, rel, raw))
    monkeypatch.setattr(request, "classify", scan_module.classify)  # where a request's planner calls it
    result = ingest(lake, IngestConfig(paths=(b, new.name, "never/was.abc"), isolate=False), previous=first.files)
    assert stat_calls == [new.name]  # the carried rows were checked against the listing alone
    assert result.parsed == 1 and result.read == 1
    assert sorted(result.files["path"]) == sorted([a, c, new.name])
    assert _row(result, a) == _row(first, a)  # carried over as it was, its old size and mtime kept
    changes = drop_zone_changes(lake.raw_dir, result.files)  # so the next look still sees the change
    assert changes.changed == (a,) and changes.added == changes.removed == ()


def test_paths_still_account_for_entries_that_arrived_after_the_request(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 2)
    first = ingest(lake, CFG)
    names = [p.name for p in _tunes()[2:4]]
    for src in _tunes()[2:4]:
        shutil.copyfile(src, lake.raw_dir / src.name)
    result = ingest(lake, IngestConfig(paths=(names[0],), isolate=False), previous=first.files)
    assert result.parsed == 2 and result.files.height == 4  # every entry still has its row
    assert set(result.files.filter(pl.col("status") == "ingested")["path"]) >= set(names)


def test_paths_travel_through_the_step_and_the_dagster_config(tmp_path: Path) -> None:
    from pipelines.assets.curation import RawScoresConfig

    lake = _lake(tmp_path, 2)
    workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    new = _tunes()[2]
    shutil.copyfile(new, lake.raw_dir / new.name)
    cfg = RawScoresConfig(paths=[new.name]).build(isolate=False)
    assert cfg.paths == (new.name,) and cfg.reuse_stat is True
    assert IngestConfig.from_dict(cfg.to_dict()) == cfg
    result, _ = workflow.ingest_step(lake, cfg, seed_default_corpus=False)
    assert result.parsed == 1 and result.read == 1 and result.files.height == 3
