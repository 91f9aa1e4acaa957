"""Work ids stay put as the corpus grows: files that sort first, or duplicate a work, move nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from musicml import workflow
from musicml.curate.augment import AugmentConfig
from musicml.formats.abc import split_tunes, transpose_abc
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake

ORIGINALS = ("ballad10.abc", "ballad60.abc")  # essenFolksong: 107 + 105 tunes
NEWCOMER = "ballad80.abc"  # 93 other tunes


def _corpus_file(name: str) -> Path:
    found = [f for f in music21_abc_files() if f.name == name]
    if not found:
        pytest.skip(f"music21's corpus has no {name}")
    return found[0]


def _transposed(text: str, semitones: int) -> str:
    """Every tune of an ABC file moved by ``semitones`` (a tune the transposer declines stays)."""
    return "\n".join((transpose_abc(t.text, semitones) or t.text).rstrip("\n") + "\n" for t in split_tunes(text))


def _build(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pieces with work_id and dup_kind, work_id -> split) after the pipeline's own steps."""
    workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    dedup = workflow.dedup_step(lake)
    workflow.augment_step(lake, AugmentConfig(min_shift=0, max_shift=0))
    workflow.split_step(lake)
    splits = pl.read_parquet(lake.path("curated", "splits.parquet")).select("work_id", "split").unique()
    reps = dedup.pieces.filter(pl.col("is_representative")).select("work_id")
    return dedup.pieces, reps.join(splits, on="work_id", how="left")


@pytest.fixture(scope="module")
def grown(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("grow")
    lake = Lake.from_env(root / "lake", raw_dir=root / "raw")
    lake.raw_dir.mkdir(parents=True)
    for name in ORIGINALS:
        shutil.copyfile(_corpus_file(name), lake.raw_dir / f"m_{name}")
    before_pieces, before = _build(lake)
    # three files that sort before every existing one
    shutil.copyfile(_corpus_file(NEWCOMER), lake.raw_dir / f"a_{NEWCOMER}")  # new works
    shutil.copyfile(_corpus_file(ORIGINALS[1]), lake.raw_dir / "a_copy.abc")  # byte copy
    (lake.raw_dir / "a_up2.abc").write_text(_transposed(_corpus_file(ORIGINALS[0]).read_text("utf-8"), 2),
                                            encoding="utf-8")  # same works, transposed, now first by path
    after_pieces, after = _build(lake)
    return {"before_pieces": before_pieces, "before": before, "after_pieces": after_pieces, "after": after}


def test_every_earlier_piece_keeps_its_work_id(grown) -> None:
    before = dict(grown["before_pieces"].select("piece_id", "work_id").iter_rows())
    after = dict(grown["after_pieces"].select("piece_id", "work_id").iter_rows())
    assert len(before) > 150
    assert {p: after.get(p) for p in before} == before


def test_every_earlier_work_keeps_its_split(grown) -> None:
    before = dict(grown["before"].iter_rows())
    after = dict(grown["after"].iter_rows())
    assert set(before.values()) == {"train", "valid", "test"}
    assert {w: after.get(w) for w in before} == before


def test_the_added_files_really_sort_first_and_join_works(grown) -> None:
    pieces = grown["after_pieces"]
    up2 = pieces.filter(pl.col("path") == "a_up2.abc")
    assert len(up2) > 90
    # the transposed copies now represent the existing works (first by path) under the old ids
    joined = up2.filter(pl.col("work_id").is_in(grown["before"]["work_id"].implode()))
    assert len(joined) >= 0.9 * len(up2)
    assert joined["is_representative"].all()
    new_works = set(pieces.filter(pl.col("path") == f"a_{NEWCOMER}")["work_id"]) - set(grown["before"]["work_id"])
    assert len(new_works) > 50
    assert len(grown["after"]) == len(grown["before"]) + len(new_works)
