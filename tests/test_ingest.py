"""Ingestion: every file one row, bad input rejected with a reason, incremental re-runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_files

from musicml.ingest import (
    FILE_SCHEMA,
    PARSER_VERSION,
    PIECE_SCHEMA,
    IngestConfig,
    cache_paths,
    ingest,
    load_parsed,
    parse_bytes,
    piece_id,
    scan,
)
from musicml.ingest.note_table import NOTE_SCHEMA
from musicml.lake import Lake, sha256_bytes

SYMUSIC = ("midi", "edge", "symusic-testcases")
UNICODE_COPIES = [
    "ملف_اختبار.midi", "ملف_اختبار_copy.midi", "テストファイル.midi", "テストファイル_copy.midi",
    "文件_#@!.midi", "文件_#@!_copy.midi", "测试文件.midi", "测试文件_copy.midi", "테스트파일.midi", "테스트파일_copy.midi",
]
MAX_BYTES = 100_000
GOOD_ABC = "X:1\nT:Good Reel\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc d2 G2|\n\nX:2\nT:Second\nL:1/4\nK:D\nDEFG|ABcd|\n"


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory, derived):
    """A drop zone with one of every kind of bad input, ingested once."""
    root = tmp_path_factory.mktemp("ingest")
    lake = Lake.from_env(root / "lake")
    raw = lake.raw_dir
    _copy(derived.midi[0], raw / "midi" / "1.midi")
    for name in UNICODE_COPIES:  # byte-identical copies under non-ASCII names
        _copy(derived.midi[0], raw / "midi" / name)
    _copy(derived.multitrack[0], raw / "midi" / "2.midi")
    for name, path in derived.corrupt_midi.items():
        _copy(path, raw / "corrupt" / name)
    for path in shared_files(*SYMUSIC, "MIDIs_corrupted"):
        _copy(path, raw / "corrupt" / path.name)
    _copy(derived.empty_midi, raw / "bad" / "empty.mid")
    _copy(derived.abc_files[0], raw / "abc" / derived.abc_files[0].name)
    _write(raw / "bad" / "fake.mid", b"This is a plain text file pretending to be MIDI.\n")
    _write(raw / "bad" / "zero.abc", b"")
    _write(raw / "bad" / "blank.abc", b"   \n\t\n  \r\n")
    _write(raw / "bad" / "binary.abc", b"X:1\nT:Bin\nK:C\nCD\xff\x01\x02EF|\n")
    _write(raw / "bad" / "nul.abc", b"X:1\nT:Nul\nK:C\nCDEF|\x00\n")
    _write(raw / "bad" / "notune.abc", b"X:1\nT:Nothing here\nK:C\n")
    _write(raw / "bad" / "prose.abc", b"Dear diary,\nthis is not music at all.\n")
    _write(raw / "bad" / "readme.txt", b"hello\n")
    _write(raw / "bad" / "noext", b"MThd")
    _write(raw / "bad" / "huge.abc", GOOD_ABC.encode() + b"%" * (MAX_BYTES + 10) + b"\n")
    _write(raw / "legacy.abc", "X:1\nT:Caf\u00e9 \u2019s Reel\nL:1/4\nK:C\nCDEF|GABc|\n".encode("cp1252"))
    _write(raw / "good.abc", GOOD_ABC.encode())
    outside = root / "outside"
    _copy(derived.midi[2], outside / "secret.mid")
    (raw / "bad" / "escape.mid").symlink_to(outside / "secret.mid")
    (raw / "inside_link.abc").symlink_to(raw / "good.abc")
    # hidden files and folders get rejected rows (never read)
    _write(raw / ".hidden.mid", b"garbage")
    _write(raw / "abc" / ".DS_Store", b"\x00\x01")
    _copy(derived.midi[3], raw / ".cache" / "4.midi")
    progress: list[tuple[int, int, str]] = []
    result = ingest(lake, IngestConfig(max_file_bytes=MAX_BYTES), progress=lambda i, n, p: progress.append((i, n, p)))
    rows = {r["path"]: r for r in result.files.iter_rows(named=True)}
    return lake, result, rows, progress


def _reason(rows: dict, rel: str, status: str = "rejected") -> str:
    row = rows[rel]
    assert row["status"] == status, row
    assert row["reason"].startswith(rel), row["reason"]  # the reason names the file
    return row["reason"]


def test_every_file_exactly_one_row(drop) -> None:
    lake, result, rows, progress = drop
    expected = sorted(
        p.relative_to(lake.raw_dir).as_posix()
        for p in lake.raw_dir.rglob("*")
        if p.is_file() or p.is_symlink()
    )
    paths = result.files["path"].to_list()
    assert paths == expected  # sorted, one row each, hidden ones included
    assert len(set(paths)) == len(paths)
    for hidden in (".hidden.mid", "abc/.DS_Store", ".cache/4.midi"):
        assert "hidden" in _reason(rows, hidden)
    assert result.files.schema == pl.Schema(FILE_SCHEMA)
    assert set(result.files["status"]) <= {"ingested", "duplicate", "rejected"}
    assert [(i, n) for i, n, _ in progress] == [(i + 1, len(paths)) for i in range(len(paths))]
    counts = result.counts()
    assert sum(counts.values()) == len(paths)
    assert counts["duplicate"] == len(UNICODE_COPIES) + 1  # the copies and the symlink inside the zone
    assert (result.files["parser_version"] == PARSER_VERSION).all()


def test_scan_lists_every_entry(drop) -> None:
    lake, _, rows, _ = drop
    entries = scan(lake.raw_dir)
    names = [e.rel for e in entries]
    assert ".hidden.mid" in names and "abc/.DS_Store" in names and ".cache/4.midi" in names
    assert names == sorted(rows)
    assert all(e.path.relative_to(lake.raw_dir).as_posix() == e.rel for e in entries)


def test_good_files_are_ingested(drop, derived) -> None:
    _, result, rows, _ = drop
    assert rows["midi/1.midi"]["status"] == "ingested" and rows["midi/1.midi"]["format"] == "midi"
    assert rows["midi/2.midi"]["status"] == "ingested"
    assert [r["status"] for p, r in rows.items() if p.startswith("abc/")] == ["rejected", "ingested"]  # .DS_Store
    good = rows["good.abc"]
    assert good["status"] == "ingested" and good["n_pieces"] == 2 and good["encoding"] == "utf-8"
    assert good["reason"] == ""
    assert good["content_hash"] == sha256_bytes(GOOD_ABC.encode())
    assert good["bytes"] == len(GOOD_ABC.encode())
    assert result.parsed == len([r for r in rows.values() if r["content_hash"] and r["status"] != "duplicate"])


def test_first_ingest_reuses_nothing(drop) -> None:
    assert drop[1].reused == 0


CORRUPT = ["garbage_chunk_id.mid", "truncated.mid", "track_length_past_end.mid"]
SHARED_CORRUPT = [p.name for p in shared_files(*SYMUSIC, "MIDIs_corrupted",
                                               names=["Issue104_Bizarre_Love_Triangle2.mid", "ValueError_Control168.mid"])]


@pytest.mark.parametrize("name", CORRUPT + SHARED_CORRUPT)
def test_corrupt_midi_rejected(drop, name: str) -> None:
    _, _, rows, _ = drop
    reason = _reason(rows, f"corrupt/{name}")
    assert "corrupt MIDI" in reason
    assert rows[f"corrupt/{name}"]["content_hash"]


@pytest.mark.parametrize("name", CORRUPT + [p.name for p in shared_files(*SYMUSIC, "MIDIs_corrupted")])
def test_every_file_from_a_corrupted_folder_is_accounted(drop, name: str) -> None:
    # e.g. symusic's RunTimeError_unexpected_EOF.mid (with the shared corpora): every chunk fits
    # and ends with End-of-Track; symusic 0.6 reads it, so it is ingested; each has exactly one row.
    _, _, rows, _ = drop
    row = rows[f"corrupt/{name}"]
    assert row["status"] in ("ingested", "rejected")
    if row["status"] == "rejected":
        assert row["reason"].startswith(f"corrupt/{name}")


def test_non_midi_with_mid_extension(drop) -> None:
    reason = _reason(drop[2], "bad/fake.mid")
    assert "not a Standard MIDI File" in reason and "b'This'" in reason


def test_midi_without_notes(drop) -> None:
    assert "holds no notes" in _reason(drop[2], "bad/empty.mid")


def test_empty_file(drop) -> None:
    reason = _reason(drop[2], "bad/zero.abc")
    assert "empty file" in reason and drop[2]["bad/zero.abc"]["bytes"] == 0


def test_whitespace_only_text(drop) -> None:
    assert "only whitespace" in _reason(drop[2], "bad/blank.abc")


def test_invalid_utf8_with_control_bytes_names_line_col(drop) -> None:
    reason = _reason(drop[2], "bad/binary.abc")
    assert reason.startswith("bad/binary.abc:4:3: ")
    assert "UTF-8" in reason and "0xff" in reason


def test_nul_byte_in_utf8_text_names_line_col(drop) -> None:
    reason = _reason(drop[2], "bad/nul.abc")
    assert reason.startswith("bad/nul.abc:4:6: ") and "U+0000" in reason


def test_cp1252_abc_accepted(drop) -> None:
    row = drop[2]["legacy.abc"]
    assert row["status"] == "ingested" and row["encoding"] == "cp1252" and row["n_pieces"] == 1
    pieces, _ = load_parsed(drop[0], drop[1].files)
    titles = pieces.filter(pl.col("path") == "legacy.abc")["title"].to_list()
    assert titles == ["Caf\u00e9 \u2019s Reel"]


def test_unknown_extension(drop) -> None:
    reason = _reason(drop[2], "bad/readme.txt")
    assert "unknown or disabled file type '.txt'" in reason and ".mid" in reason
    assert drop[2]["bad/readme.txt"]["format"] == "unknown"
    assert "'(none)'" in _reason(drop[2], "bad/noext")


def test_file_over_max_bytes(drop) -> None:
    reason = _reason(drop[2], "bad/huge.abc")
    assert "file too large" in reason and f"max_file_bytes {MAX_BYTES}" in reason
    assert drop[2]["bad/huge.abc"]["bytes"] > MAX_BYTES


def test_symlink_outside_drop_zone(drop) -> None:
    reason = _reason(drop[2], "bad/escape.mid")
    assert "symbolic link pointing outside the drop zone" in reason
    assert drop[2]["bad/escape.mid"]["content_hash"] is None  # never read


def test_symlink_inside_drop_zone_is_followed(drop) -> None:
    row = drop[2]["inside_link.abc"]
    assert row["status"] == "duplicate" and row["reason"] == "inside_link.abc: identical bytes to good.abc"


def test_abc_without_readable_tune(drop) -> None:
    reason = _reason(drop[2], "bad/notune.abc")
    assert "no readable tune" in reason and "holds no notes" in reason
    assert "no readable tune" in _reason(drop[2], "bad/prose.abc")


def test_byte_identical_copies_are_duplicates_of_the_first(drop) -> None:
    rows = drop[2]
    first_hash = rows["midi/1.midi"]["content_hash"]
    for name in UNICODE_COPIES:
        row = rows[f"midi/{name}"]
        assert row["status"] == "duplicate", name
        assert row["reason"] == f"midi/{name}: identical bytes to midi/1.midi"
        assert row["content_hash"] == first_hash


def test_problems_listed_for_abc(drop) -> None:
    row = drop[2]["good.abc"]
    assert row["n_problems"] >= len(row["problems"])
    for p in row["problems"]:
        assert re.match(r"^good\.abc:\d+(:\d+)?: ", p), p


def test_load_parsed_pieces_and_notes(drop) -> None:
    lake, result, rows, _ = drop
    pieces, notes = load_parsed(lake, result.files)
    assert pieces.schema == pl.Schema(PIECE_SCHEMA) and notes.schema == pl.Schema(NOTE_SCHEMA)
    ingested = {p for p, r in rows.items() if r["status"] == "ingested"}
    assert set(pieces["path"]) == ingested
    assert sum(r["n_pieces"] for r in rows.values() if r["status"] == "ingested") == len(pieces)
    assert set(notes["piece_id"]) == set(pieces["piece_id"])
    good = pieces.filter(pl.col("path") == "good.abc").sort("index")
    h = rows["good.abc"]["content_hash"]
    assert good["piece_id"].to_list() == [piece_id(h, 0), piece_id(h, 1)]
    assert good["line"].to_list() == [1, 8] and good["title"].to_list() == ["Good Reel", "Second"]
    midi = pieces.filter(pl.col("path") == "midi/1.midi").row(0, named=True)
    assert midi["text"].startswith("MIDI grid=4") and midi["n_notes"] > 0
    assert midi["text_bytes"] == len(midi["text"].encode())
    for rel in ingested:
        assert all(p.exists() for p in cache_paths(lake, rows[rel]["content_hash"], rows[rel]["format"]))


def test_parse_bytes_unknown_format() -> None:
    from musicml.formats import ScoreError

    with pytest.raises(ScoreError, match="unsupported format 'xml'"):
        parse_bytes(b"<score/>", "xml", "a.xml")


# --- incremental ---------------------------------------------------------------------------


def test_incremental_reingest(tmp_path: Path, derived) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _copy(derived.midi[0], lake.raw_dir / "a.midi")
    _write(lake.raw_dir / "b.abc", GOOD_ABC.encode())
    _write(lake.raw_dir / "bad.abc", b"X:1\nT:Nothing\nK:C\n")
    _write(lake.raw_dir / "note.txt", b"x")
    first = ingest(lake)
    assert first.parsed == 3 and first.reused == 0

    second = ingest(lake, previous=first.files)
    assert second.parsed == 0
    assert second.reused == 3
    # mtimes are recorded only once a file is 2 s old (musicml.ingest.files.RACY_NS)
    assert second.files.drop("mtime_ns").equals(first.files.drop("mtime_ns"))

    _copy(derived.midi[1], lake.raw_dir / "new" / "c.midi")
    third = ingest(lake, previous=second.files)
    assert third.parsed == 1 and third.reused == 3
    assert third.files.filter(pl.col("path") == "new/c.midi")["status"].to_list() == ["ingested"]
    pieces, _ = load_parsed(lake, third.files)
    assert set(pieces["path"]) == {"a.midi", "b.abc", "new/c.midi"}


def test_incremental_renamed_file_keeps_status_with_new_path(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(lake.raw_dir / "bad.abc", b"X:1\nT:Nothing\nK:C\n")
    _write(lake.raw_dir / "good.abc", GOOD_ABC.encode())
    first = ingest(lake)
    (lake.raw_dir / "bad.abc").rename(lake.raw_dir / "renamed.abc")
    (lake.raw_dir / "good.abc").rename(lake.raw_dir / "moved.abc")
    second = ingest(lake, previous=first.files)
    assert second.parsed == 0
    rows = {r["path"]: r for r in second.files.iter_rows(named=True)}
    assert rows["renamed.abc"]["status"] == "rejected"
    assert rows["renamed.abc"]["reason"].startswith("renamed.abc: no readable tune")
    pieces, _ = load_parsed(lake, second.files)
    assert set(pieces["path"]) == {"moved.abc"}


def test_incremental_renamed_reject_names_only_new_path(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(lake.raw_dir / "old.abc", b"X:1\nT:Nothing\nK:C\n")
    first = ingest(lake)
    assert "old.abc:1: tune 1" in first.files["reason"][0]
    (lake.raw_dir / "old.abc").rename(lake.raw_dir / "new.abc")
    second = ingest(lake, previous=first.files)
    assert second.parsed == 0
    assert "old.abc" not in second.files["reason"][0]


def test_previous_from_other_parser_version_is_reparsed(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(lake.raw_dir / "good.abc", GOOD_ABC.encode())
    first = ingest(lake)
    old = first.files.with_columns(pl.lit("0").alias("parser_version"))
    assert ingest(lake, previous=old).parsed == 1


def test_empty_drop_zone(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    result = ingest(lake)
    assert result.files.is_empty() and result.files.schema == pl.Schema(FILE_SCHEMA)
    assert lake.raw_dir.is_dir() and result.parsed == 0
    pieces, notes = load_parsed(lake, result.files)
    assert pieces.is_empty() and notes.is_empty()


def test_disabled_format_is_rejected(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(lake.raw_dir / "good.abc", GOOD_ABC.encode())
    result = ingest(lake, IngestConfig(formats=("midi",)))
    reason = result.files["reason"][0]
    assert result.files["status"][0] == "rejected"
    assert reason.startswith("good.abc: unknown or disabled file type '.abc'")


def test_symlinked_folder_outside_is_not_silently_dropped(tmp_path: Path) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(tmp_path / "elsewhere" / "x.abc", GOOD_ABC.encode())
    lake.raw_dir.mkdir(parents=True)
    (lake.raw_dir / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    result = ingest(lake)
    assert len(result.files) == 1
    assert result.files["status"][0] == "rejected"


# --- alphaTex ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b'\\title "unterminated', b"@@@ ### !!! ((( ", b"\\track { \n\\staff \n 3.3.4 | 5.x.y.z |\n"],
    ids=["unterminated", "garbage", "broken-bar"],
)
def test_malformed_alphatex_rejected_with_line_col(tmp_path: Path, data: bytes) -> None:
    lake = Lake.from_env(tmp_path / "lake")
    _write(lake.raw_dir / "tabs" / "bad.atex", data)
    result = ingest(lake)
    row = result.files.row(0, named=True)
    assert row["status"] == "rejected", row
    assert row["reason"].startswith("tabs/bad.atex: malformed alphaTex")
    assert re.search(r"tabs/bad\.atex:\d+:\d+", row["reason"]), row["reason"]


# --- default corpus seeding ----------------------------------------------------------------


def test_seed_drop_zone(tmp_path: Path) -> None:
    from musicml.ingest.corpus import music21_abc_files, seed_drop_zone

    files = music21_abc_files()
    assert files == sorted(files) and len(files) > 1000
    raw = tmp_path / "raw"
    _write(raw / ".gitkeep", b"")  # hidden files do not count as scores
    assert seed_drop_zone(raw, limit=3) == 3
    copied = sorted(p for p in raw.rglob("*.abc"))
    assert len(copied) == 3 and all(p.relative_to(raw).parts[0] == "music21" for p in copied)
    assert [p.read_bytes() for p in copied] == [p.read_bytes() for p in files[:3]]
    assert seed_drop_zone(raw, limit=3) == 0  # not empty any more: nothing copied
    assert len(list(raw.rglob("*.abc"))) == 3


def test_alphatex_piece_carries_its_title() -> None:
    parsed = parse_bytes(b'\\title "Hello"\n.\n3.3.4 | 0.1.4\n', "atex", "x.atex")
    assert [p.title for p in parsed.pieces] == ["Hello"]
    untitled = parse_bytes(b"3.3.4 | 0.1.4\n", "atex", "y.atex")
    assert [p.title for p in untitled.pieces] == [""]


def test_text_size_limit_counts_utf8_bytes() -> None:
    """``max_text_bytes`` counts bytes, not characters, where the canonical text is not ASCII."""
    from musicml.formats import ScoreError
    from musicml.ingest.files import utf8_len

    assert utf8_len("MIDI grid=4") == 11 and utf8_len("Été ♪") == 9
    data = "X:1\nT:Été ♪ déjà\nM:4/4\nL:1/8\nK:G\nGABc dedB|\n".encode()
    text = parse_bytes(data, "abc", "t.abc").pieces[0].text
    assert not text.isascii()
    assert parse_bytes(data, "abc", "t.abc", IngestConfig(max_text_bytes=utf8_len(text))).pieces
    with pytest.raises(ScoreError, match="canonical text too large"):
        parse_bytes(data, "abc", "t.abc", IngestConfig(max_text_bytes=len(text)))
