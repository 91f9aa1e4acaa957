"""Ingestion in hash buckets of the drop zone (several machines sharing one lake)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from musicml import workflow
from musicml.ingest import IngestConfig, buckets, files
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
OLD_NS = 1_600_000_000 * 10**9  # an mtime long past: fresh files' mtimes are not trusted
CFG = IngestConfig(isolate=False)


def _lake(tmp_path: Path, n: int = 12) -> Lake:
    """A drop zone of ``n`` real ABC files of music21's corpus, one corrupt MIDI, one FIFO."""
    lake = Lake(root=tmp_path / "lake", raw_dir=tmp_path / "lake" / "raw")
    (lake.raw_dir / "sub").mkdir(parents=True)
    tunes = sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[200:200 + n]
    for i, src in enumerate(tunes):
        shutil.copyfile(src, lake.raw_dir / ("sub" if i % 2 else "") / src.name)
    (lake.raw_dir / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06not midi at all")
    os.mkfifo(lake.raw_dir / "pipe.mid")
    for p in lake.raw_dir.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(OLD_NS, OLD_NS))
    return lake


def test_bucket_names_and_hash_are_stable() -> None:
    assert buckets.bucket_names(3) == ["0-of-3", "1-of-3", "2-of-3"]
    assert buckets.bucket_names(12)[:2] == ["00-of-12", "01-of-12"]
    assert buckets.parse_bucket_name("07-of-12") == (7, 12)
    for bad in ("3-of-3", "x-of-3", "1of3", "-1-of-3", ""):
        with pytest.raises(ValueError, match="not a bucket name"):
            buckets.parse_bucket_name(bad)
    assert buckets.bucket_of("a/b.mid", 8) == buckets.bucket_of("a/b.mid", 8)  # not Python's salted hash
    names = [f"f{i}.abc" for i in range(400)]
    counts = [sum(buckets.bucket_of(n, 4) == k for n in names) for k in range(4)]
    assert min(counts) > 60, counts  # spread over the buckets
    assert 0 <= buckets.bucket_of("caf\udce9.mid", 8) < 8  # an undecodable name still has a bucket


def test_buckets_cover_the_drop_zone_once_and_the_whole_ingestion_reads_nothing_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path)
    parts = [workflow.ingest_bucket_step(lake, name, CFG) for name in buckets.bucket_names(3)]
    paths = [p for r in parts for p in r.files["path"].to_list()]
    assert len(paths) == len(set(paths)) == 14  # 12 tunes, the corrupt MIDI, the FIFO: each in one bucket
    for name, r in zip(buckets.bucket_names(3), parts):
        k, n = buckets.parse_bucket_name(name)
        assert all(buckets.bucket_of(p, n) == k for p in r.files["path"])
        assert buckets.bucket_table_path(lake, name).exists()
    by_path = {row["path"]: row for r in parts for row in r.files.iter_rows(named=True)}
    assert by_path["pipe.mid"]["status"] == "rejected" and "FIFO" in by_path["pipe.mid"]["reason"]
    assert by_path["bad.mid"]["status"] == "rejected" and "bad.mid" in by_path["bad.mid"]["reason"]

    opened: list[str] = []
    real = files.read_regular
    monkeypatch.setattr(files, "read_regular", lambda p, m: opened.append(str(p)) or real(p, m))
    whole, _ = workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    assert whole.parsed == 0 and opened == []  # every row came from the buckets, unread
    assert sorted(whole.files["path"]) == sorted(paths)

    fresh = Lake(root=tmp_path / "fresh", raw_dir=lake.raw_dir)  # the same drop zone, ingested whole
    alone = files.ingest(fresh, CFG).files
    cols = ["path", "format", "content_hash", "status", "n_pieces"]
    assert whole.files.select(cols).sort("path").equals(alone.select(cols).sort("path"))
    pieces, _ = workflow.parse_step(lake)
    ingested = whole.files.filter(pl.col("status") == "ingested")
    assert len(ingested) >= 10 and set(pieces["content_hash"]) == set(ingested["content_hash"])


def test_a_changed_file_after_its_bucket_ran_is_read_again_by_the_whole_ingestion(tmp_path: Path) -> None:
    lake = _lake(tmp_path, n=4)
    for name in buckets.bucket_names(2):
        workflow.ingest_bucket_step(lake, name, CFG)
    target = next(p for p in lake.raw_dir.rglob("*.abc"))
    target.write_text(target.read_text() + "\n")
    os.utime(target, ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    whole, _ = workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    assert whole.read == 1 and whole.parsed == 1


def test_two_buckets_in_two_processes_at_once_share_one_lake(tmp_path: Path) -> None:
    lake = _lake(tmp_path, n=8)
    code = ("import sys; from pathlib import Path; from musicml import workflow; from musicml.lake import Lake; "
            "r = Path(sys.argv[1]); lk = Lake(root=r, raw_dir=r / 'raw'); "
            "print(len(workflow.ingest_bucket_step(lk, sys.argv[2]).files))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(lake.root), name], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in buckets.bucket_names(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert sum(int(o[0].split()[-1]) for o in outs) == 10
    whole, _ = workflow.ingest_step(lake, CFG, seed_default_corpus=False)
    assert whole.parsed == 0 and whole.read == 0 and whole.counts()["rejected"] >= 2


def test_the_partitioned_asset_writes_its_bucket(tmp_path: Path) -> None:
    from pipelines.assets.buckets import BUCKET_PARTITIONS, raw_score_buckets
    from pipelines.resources import LakeResource

    lake = _lake(tmp_path, n=6)
    key = BUCKET_PARTITIONS.get_partition_keys()[0]
    result = dg.materialize([raw_score_buckets], partition_key=key, resources={
        "lake": LakeResource(root=str(lake.root), raw_dir=str(lake.raw_dir))},
        run_config={"ops": {"raw_score_buckets": {"config": {"isolate": False}}}})
    assert result.success
    table = pl.read_parquet(buckets.bucket_table_path(lake, key))
    k, n = buckets.parse_bucket_name(key)
    assert all(buckets.bucket_of(p, n) == k for p in table["path"])
    mat = result.asset_materializations_for_node("raw_score_buckets")[0]
    assert mat.partition == key and mat.metadata["dagster/row_count"].value == len(table)
