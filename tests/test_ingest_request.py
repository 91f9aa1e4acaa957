"""A request (``IngestConfig.paths``, as the drop-zone sensor sends it) gives the files table a
whole ingestion of the same drop zone gives: random sequences of what happens to real drop
zones (files added, copied before and after their original, removed, rewritten, swapped for
links and FIFOs, link loops, hidden, empty, in folders, names that are not UTF-8; formats
switched off), each ingested both ways."""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from musicml.ingest import IngestConfig, drop_zone_changes, ingest, request
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake

OLD_NS = 1_600_000_000 * 10**9


def _tunes() -> list[Path]:
    return sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[100:116]


def _age(path: Path, k: int) -> None:
    ns = OLD_NS + k * 10**9
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


class DropZone:
    """A drop zone that a seeded random source changes one event at a time."""

    def __init__(self, raw: Path, rng: random.Random) -> None:
        self.raw, self.rng, self.pool, self.tick = raw, rng, _tunes(), 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.raw.rglob("*") if p.is_file() and not p.is_symlink())

    def put(self, rel: str, data: bytes) -> None:
        path = self.raw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(data)
        self.tick += 1
        _age(path, self.tick)

    def event(self) -> str:
        rng, files = self.rng, self.files()
        kind = rng.choice(["new", "new", "copy_before", "copy_after", "remove", "rewrite", "link", "dangling",
                           "fifo", "hidden", "empty", "folder", "unknown", "undecodable", "loop"] if files else ["new"])
        if kind == "new" or not files:
            src = rng.choice(self.pool)
            self.put(f"{rng.choice(['a', 'm', 'z'])}{self.tick}_{src.name}", src.read_bytes())
        elif kind in ("copy_before", "copy_after"):
            src = rng.choice(files)
            prefix = "0" if kind == "copy_before" else "~"
            self.put(str(src.relative_to(self.raw).with_name(prefix + src.name)), src.read_bytes())
        elif kind == "remove":
            rng.choice(files).unlink()
        elif kind == "rewrite":
            src = rng.choice(files)
            self.put(str(src.relative_to(self.raw)), src.read_bytes() + b"\n% rewritten\n")
        elif kind in ("link", "dangling", "fifo"):
            victim = rng.choice(files)
            victim.unlink()
            if kind == "fifo":
                os.mkfifo(victim)
            else:
                target = rng.choice(self.files()) if kind == "link" and self.files() else self.raw / "nowhere.abc"
                victim.symlink_to(target)
        elif kind == "hidden":
            self.put(f".hidden{self.tick}.abc", rng.choice(self.pool).read_bytes())
        elif kind == "undecodable":  # a name that is not UTF-8: shown as \\xNN, never requested by that name
            (Path(os.fsdecode(os.fsencode(self.raw) + b"/odd%d\xff.abc" % self.tick))).write_bytes(b"X:1\nK:C\nC\n")
            self.tick += 1
        elif kind == "loop":
            (self.raw / f"loop{self.tick}a").symlink_to(f"loop{self.tick}b")
            (self.raw / f"loop{self.tick}b").symlink_to(f"loop{self.tick}a")
            self.tick += 1
        elif kind == "empty":
            self.put(f"empty{self.tick}.mid", b"")
        elif kind == "folder":
            self.put(f"sub{self.tick % 2}/{self.tick}.abc", rng.choice(self.pool).read_bytes())
        else:
            self.put(f"notes{self.tick}.txt", b"not a score")
        return kind


def _both(lake: Lake, previous: pl.DataFrame | None, cfg: IngestConfig, paths: tuple[str, ...],
          monkeypatch: pytest.MonkeyPatch) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The tables of a whole ingestion, of the request planned from names, and of the request
    over the whole listing (the planner switched off)."""
    whole = ingest(lake, cfg, previous).files
    planned = ingest(lake, replace(cfg, paths=paths), previous).files
    with monkeypatch.context() as m:
        m.setattr(request, "plan", lambda *a, **k: None)
        listed = ingest(lake, replace(cfg, paths=paths), previous).files
    return whole, planned, listed


@pytest.mark.parametrize("seed", range(10))
def test_a_request_gives_the_table_a_whole_ingestion_gives(tmp_path: Path, seed: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    zone = DropZone(lake.raw_dir, rng)
    for _ in range(4):
        zone.event()
    cfg = IngestConfig(isolate=False)
    previous = ingest(lake, cfg).files
    for step in range(10):
        kinds = [zone.event() for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.15:  # a format switched off (or back on) between runs
            cfg = IngestConfig(isolate=False, formats=("midi",) if "abc" in cfg.formats else cfg.formats + ("abc",))
        paths = drop_zone_changes(lake.raw_dir, previous).paths
        if paths and rng.random() < 0.3:  # one change arrives after the request was made
            paths = paths[1:]
        whole, planned, listed = _both(lake, previous, cfg, paths, monkeypatch)
        assert planned.equals(listed), (seed, step, kinds)
        if set(paths) >= set(drop_zone_changes(lake.raw_dir, previous).paths):
            assert planned.equals(whole), (seed, step, kinds)
        previous = planned
    assert set(previous["path"]) == {p for p in drop_zone_changes(lake.raw_dir, None).added}


def test_a_request_examines_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One new file in a drop zone of many: one entry is classified, one file read."""
    from musicml.ingest import files

    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    tunes = _tunes()
    for i, src in enumerate(tunes[:12]):
        shutil.copyfile(src, lake.raw_dir / f"{i:02d}_{src.name}")
        _age(lake.raw_dir / f"{i:02d}_{src.name}", i)
    first = ingest(lake, IngestConfig(isolate=False))
    shutil.copyfile(tunes[12], lake.raw_dir / "new.abc")
    calls: list[str] = []
    real = request.classify
    monkeypatch.setattr(request, "classify", lambda p, rel, raw: calls.append(rel) or real(p, rel, raw))
    monkeypatch.setattr(files, "scan", lambda *a, **k: pytest.fail("the whole drop zone was scanned"))
    result = ingest(lake, IngestConfig(isolate=False, paths=("new.abc",)), first.files)
    assert calls == ["new.abc"] and result.read == 1 and result.parsed == 1
    assert result.files.height == 13 and result.files["path"].is_sorted()
    assert result.files.filter(pl.col("path") != "new.abc").equals(first.files)


def test_a_copy_takes_over_when_its_original_goes_unrequested(tmp_path: Path) -> None:
    """The original's removal is not in the request (it happened after): its copy is the file now."""
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    tunes = _tunes()
    for i, name in enumerate(["a.abc", "b.abc", "c.abc"]):
        shutil.copyfile(tunes[0 if name != "c.abc" else 1], lake.raw_dir / name)
        _age(lake.raw_dir / name, i)
    first = ingest(lake, IngestConfig(isolate=False))
    assert dict(first.files.select("path", "status").iter_rows())["b.abc"] == "duplicate"
    (lake.raw_dir / "a.abc").unlink()
    shutil.copyfile(tunes[2], lake.raw_dir / "d.abc")
    result = ingest(lake, IngestConfig(isolate=False, paths=("d.abc",)), first.files)
    assert dict(result.files.select("path", "status").iter_rows()) == {
        "b.abc": "ingested", "c.abc": "ingested", "d.abc": "ingested"}
    assert result.parsed == 1  # b's bytes were parsed before, as a.abc


@pytest.mark.parametrize("name", ["../outside.abc", "/etc/passwd", "a//b.abc", "./x.abc", "odd\\xff.abc", ""])
def test_a_name_outside_the_listing_finds_nothing(tmp_path: Path, name: str) -> None:
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    (tmp_path / "lake" / "outside.abc").write_text("X:1\nK:C\nC\n")
    (tmp_path / "lake" / "raw" / "x.abc").symlink_to(tmp_path / "lake" / "outside.abc")
    planned = request.plan(lake.raw_dir, {name}, None, IngestConfig())
    assert planned is not None and [e.rel for e in planned.entries] == ["x.abc"]  # an arrival, not the name
    result = ingest(lake, IngestConfig(isolate=False, paths=(name,)))
    assert result.files.select("path", "status").rows() == [("x.abc", "rejected")]  # a link outside: not followed


def test_a_name_shown_escaped_is_planned_by_its_listing(tmp_path: Path) -> None:
    """A file name that is not UTF-8 is requested by its display name (``\\xff``), as the sensor sends it."""
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    lake.raw_dir.mkdir(parents=True)
    Path(os.fsdecode(os.fsencode(lake.raw_dir) + b"/odd\xff.abc")).write_bytes(b"X:1\nK:C\nC\n")
    (display,) = drop_zone_changes(lake.raw_dir, None).paths
    assert display == "odd\\xff.abc"
    planned = request.plan(lake.raw_dir, {display}, None, IngestConfig())
    assert planned is not None and [e.rel for e in planned.entries] == [display]
    result = ingest(lake, IngestConfig(isolate=False, paths=(display,)))
    assert result.files["reason"].to_list() == [f"{display}: file name is not valid UTF-8"]


def test_an_unlistable_folder_is_left_to_the_whole_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its row ("cannot list folder") comes from the whole scan, which the request then uses."""
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    (lake.raw_dir / "locked").mkdir(parents=True)
    shutil.copyfile(_tunes()[0], lake.raw_dir / "a.abc")
    real = os.scandir

    def scandir(path):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert request.listing(lake.raw_dir) is None
    result = ingest(lake, IngestConfig(isolate=False, paths=("a.abc",)))
    assert dict(result.files.select("path", "status").iter_rows()) == {"a.abc": "ingested", "locked": "rejected"}
