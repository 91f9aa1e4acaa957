"""Pitch-shift augmentation: allowed shifts, drums, originals, counts, per-format transposers."""

from __future__ import annotations

import polars as pl
import pytest
import symusic

from musicml.curate.augment import (
    AUG_SCHEMA,
    AugmentConfig,
    allowed_shifts,
    augment,
    transpose_all,
    transpose_text,
)
from musicml.formats import alphatex
from musicml.formats.midi import text as miditext
from musicml.formats.native import captured_native_output
from musicml.ingest.note_table import NOTE_SCHEMA, note_table

ABC = "X:3\nT:Test Jig\nC:Trad\nM:6/8\nL:1/8\nK:D\nDFA dAF|GBd gdB|AFD EFG|FDD D3|\n"


def _notes(rows: list[tuple[str, int, bool]]) -> pl.DataFrame:
    """(piece_id, pitch, is_drum) rows as a note table."""
    return pl.DataFrame(
        {"piece_id": [r[0] for r in rows], "track": [0] * len(rows), "program": [0] * len(rows),
         "is_drum": [r[2] for r in rows], "onset": list(range(len(rows))), "duration": [1] * len(rows),
         "pitch": [r[1] for r in rows], "velocity": [64] * len(rows)},
        schema=NOTE_SCHEMA,
    )


def _shifts(df: pl.DataFrame) -> dict[str, list[int]]:
    return {pid: list(s) for pid, s in df.iter_rows()}


def _score(pitches: list[int], drums: list[int] = (), tpq: int = 96) -> symusic.Score:
    s = symusic.Score(tpq)
    t = symusic.Track("keys", program=0)
    for i, p in enumerate(pitches):
        t.notes.append(symusic.Note(i * tpq, tpq, p, 80))
    s.tracks.append(t)
    if drums:
        d = symusic.Track("kit", program=0, is_drum=True)
        for i, p in enumerate(drums):
            d.notes.append(symusic.Note(i * tpq, tpq // 2, p, 100))
        s.tracks.append(d)
    return s


def _pitches(score: symusic.Score, drum: bool | None = None) -> list[int]:
    return sorted(n.pitch for t in score.tracks if drum is None or t.is_drum == drum for n in t.notes)


def _abc_pitches(text: str) -> list[int]:
    with captured_native_output():
        return _pitches(symusic.Score.from_abc(text))


# --- allowed_shifts --------------------------------------------------------------------------


def test_config_shifts() -> None:
    assert AugmentConfig().shifts() == [-3, -2, -1, 1, 2, 3]
    assert AugmentConfig(min_shift=0, max_shift=0).shifts() == []
    assert AugmentConfig(min_shift=-1, max_shift=2).shifts() == [-1, 1, 2]


def test_allowed_shifts_respects_midi_range() -> None:
    notes = _notes([("high", 60, False), ("high", 126, False), ("low", 1, False), ("low", 50, False),
                    ("mid", 60, False), ("mid", 72, False)])
    got = _shifts(allowed_shifts(notes, AugmentConfig()))
    assert got["high"] == [-3, -2, -1, 1]  # 126 + 2 > 127
    assert got["low"] == [-1, 1, 2, 3]     # 1 - 2 < 0
    assert got["mid"] == [-3, -2, -1, 1, 2, 3]


def test_allowed_shifts_custom_range_inclusive() -> None:
    notes = _notes([("a", 40, False), ("a", 80, False), ("b", 41, False), ("b", 79, False)])
    got = _shifts(allowed_shifts(notes, AugmentConfig(low=40, high=80)))
    assert "a" not in got or got["a"] == []  # any shift leaves [40, 80]
    assert got["b"] == [-1, 1]


def test_allowed_shifts_ignores_drums() -> None:
    notes = _notes([("p", 60, False), ("p", 127, True), ("p", 0, True), ("drums_only", 36, True)])
    got = _shifts(allowed_shifts(notes, AugmentConfig()))
    assert got["p"] == [-3, -2, -1, 1, 2, 3]
    assert "drums_only" not in got


def test_allowed_shifts_dtype() -> None:
    df = allowed_shifts(_notes([("p", 60, False)]), AugmentConfig())
    assert df.schema["shift"] == pl.List(pl.Int8)


# --- transpose_text --------------------------------------------------------------------------


def test_transpose_midi_text_keeps_drums() -> None:
    score = _score([60, 64, 67], drums=[36, 38, 42])
    text = miditext.encode(score)
    out = transpose_text("midi", text, 3)
    moved = miditext.decode(out, strict=True)
    assert _pitches(moved, drum=False) == [63, 67, 70]
    assert _pitches(moved, drum=True) == [36, 38, 42]
    assert out.startswith("MIDI grid=4")


def test_transpose_midi_text_keeps_grid() -> None:
    s = symusic.Score(96)
    t = symusic.Track("p", program=0)
    for i, p in enumerate([60, 62, 64]):
        t.notes.append(symusic.Note(i * 8, 8, p, 80))  # triplet sixteenths: grid 12
    s.tracks.append(t)
    text = miditext.encode(s, grid=12)
    out = transpose_text("midi", text, -2)
    assert out.split("\n")[0] == text.split("\n")[0]
    assert _pitches(miditext.decode(out, strict=True)) == [58, 60, 62]


def test_transpose_midi_real(derived) -> None:
    score = symusic.Score(str(derived.multitrack[0]))
    text = miditext.encode(score)
    base = _pitches(miditext.decode(text))
    outs = transpose_all("midi", text, [-3, 2])
    for k, out in outs.items():
        assert miditext.validate(out) == []
        assert _pitches(miditext.decode(out, strict=True)) == [p + k for p in base]


@pytest.mark.parametrize("k", [-3, 1, 2])
def test_transpose_abc_text(k: int) -> None:
    out = transpose_text("abc", ABC, k)
    assert out.startswith("X:3\nT:Test Jig\nC:Trad")
    assert _abc_pitches(out) == [p + k for p in _abc_pitches(ABC)]


def test_transpose_all_empty_and_unknown() -> None:
    assert transpose_all("midi", "MIDI grid=4", []) == {}
    with pytest.raises(ValueError, match="unknown format"):
        transpose_text("musicxml", "<x/>", 1)


ATEX_OK = "\\tuning (E4 B3 G3 D3 A2 E2)\n.\n5.3.4 7.2.4 5.4.4 0.5.4 |\n"
ATEX_EDGE = "\\tuning (E4 B3 G3 D3 A2 E2)\n.\n24.1.4 22.1.4 | 0.6.4 3.6.4 |\n"  # 88 on top, 40 at bottom


def test_transpose_alphatex() -> None:
    base = _pitches(alphatex.to_score(alphatex.parse(ATEX_OK).ast))
    out = transpose_text("atex", ATEX_OK, 2)
    assert out is not None
    result = alphatex.parse(out)
    assert result.ok
    assert _pitches(alphatex.to_score(result.ast)) == [p + 2 for p in base]
    assert transpose_text("atex", ATEX_EDGE, 1) is None   # fret 25 does not exist
    assert transpose_text("atex", ATEX_EDGE, -1) is None  # below the low E string
    assert transpose_all("atex", "\\title \"broken", [1, 2]) == {1: None, 2: None}


# --- augment ---------------------------------------------------------------------------------


def _reps(items: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame({"piece_id": [i[0] for i in items], "work_id": [i[1] for i in items],
                         "format": [i[2] for i in items], "text": [i[3] for i in items]})


def test_augment_originals_shifts_and_counts() -> None:
    with captured_native_output():
        abc_score = symusic.Score.from_abc(ABC)
    high = _score([100, 126])
    mid = _score([60, 64], drums=[36])
    reps = _reps([
        ("b-abc", "w1", "abc", ABC),
        ("a-high", "w2", "midi", miditext.encode(high)),
        ("c-mid", "w3", "midi", miditext.encode(mid)),
    ])
    notes = pl.concat([note_table(abc_score, "b-abc"), note_table(high, "a-high"), note_table(mid, "c-mid")])
    res = augment(reps, notes, AugmentConfig(workers=1))
    t = res.table
    assert t.schema == pl.Schema(AUG_SCHEMA)
    assert t["aug_id"].to_list() == sorted(t["aug_id"])
    originals = t.filter(pl.col("shift") == 0)
    assert sorted(originals["piece_id"]) == ["a-high", "b-abc", "c-mid"]
    for pid, _, _, text in reps.iter_rows():
        row = originals.filter(pl.col("piece_id") == pid).row(0, named=True)
        assert row["text"] == text and row["aug_id"] == pid and row["text_bytes"] == len(text.encode())
    high_shifts = t.filter(pl.col("piece_id") == "a-high")["shift"].sort().to_list()
    assert high_shifts == [-3, -2, -1, 0, 1]
    assert set(t.filter(pl.col("piece_id") == "c-mid")["aug_id"]) == {
        "c-mid", "c-mid-3", "c-mid-2", "c-mid-1", "c-mid+1", "c-mid+2", "c-mid+3"}
    assert (t.group_by("piece_id").agg(pl.col("work_id").n_unique())["work_id"] == 1).all()
    assert res.counts == {"originals": 3, "shifted": 6 + 4 + 6, "out_of_range": 2, "unplayable": 0, "failed": 0}
    # every shifted copy is parseable text whose pitches moved by k
    for row in t.filter(pl.col("shift") != 0).iter_rows(named=True):
        k = row["shift"]
        if row["format"] == "abc":
            assert _abc_pitches(row["text"]) == [p + k for p in _abc_pitches(ABC)]
        else:
            src = high if row["piece_id"] == "a-high" else mid
            moved = miditext.decode(row["text"], strict=True)
            assert _pitches(moved, drum=False) == [p + k for p in _pitches(src, drum=False)]
            assert _pitches(moved, drum=True) == _pitches(src, drum=True)
        assert row["text_bytes"] == len(row["text"].encode())


def test_augment_disabled_format_keeps_original_only() -> None:
    s = _score([60, 62])
    reps = _reps([("m", "m", "midi", miditext.encode(s))])
    res = augment(reps, note_table(s, "m"), AugmentConfig(formats=("abc",), workers=1))
    assert res.table["shift"].to_list() == [0]
    assert res.counts == {"originals": 1, "shifted": 0, "out_of_range": 0, "unplayable": 0, "failed": 0}


def test_augment_without_notes_counts_out_of_range() -> None:
    drums = symusic.Score(96)
    d = symusic.Track("kit", program=0, is_drum=True)
    d.notes.append(symusic.Note(0, 48, 36, 100))
    drums.tracks.append(d)
    reps = _reps([("d", "d", "midi", miditext.encode(drums))])
    res = augment(reps, note_table(drums, "d"), AugmentConfig(workers=1))
    assert res.table["shift"].to_list() == [0]
    assert res.counts["out_of_range"] == 6 and res.counts["originals"] == 1


def test_augment_failure_keeps_original() -> None:
    s = _score([60, 62])
    reps = _reps([("x", "x", "abc", "this is not ABC at all")])
    res = augment(reps, note_table(s, "x"), AugmentConfig(min_shift=-1, max_shift=1, workers=1))
    assert res.table["aug_id"].to_list() == ["x"]
    assert res.counts["failed"] == 2 and res.counts["shifted"] == 0


def test_augment_unplayable_alphatex_counted() -> None:
    edge = alphatex.to_score(alphatex.parse(ATEX_EDGE).ast)
    reps = _reps([("t", "t", "atex", ATEX_EDGE)])
    res = augment(reps, note_table(edge, "t"), AugmentConfig(min_shift=-1, max_shift=1, workers=1))
    assert res.table["aug_id"].to_list() == ["t"]
    assert res.counts["unplayable"] == 2


def test_augment_no_shifts_and_empty() -> None:
    s = _score([60])
    reps = _reps([("x", "x", "midi", miditext.encode(s))])
    res = augment(reps, note_table(s, "x"), AugmentConfig(min_shift=0, max_shift=0, workers=1))
    assert res.table["shift"].to_list() == [0] and res.counts["out_of_range"] == 0
    empty = augment(reps.clear(), note_table(s, "x").clear(), AugmentConfig(workers=1))
    assert empty.table.is_empty() and empty.table.schema == pl.Schema(AUG_SCHEMA)


def test_augment_parallel_matches_serial_and_reports_progress() -> None:
    items, notes = [], []
    for i in range(70):  # >= 64 pieces: the process pool is used
        s = _score([40 + i, 45 + i])
        pid = f"p{i:03d}"
        items.append((pid, pid, "midi", miditext.encode(s)))
        notes.append(note_table(s, pid))
    reps, notes_df = _reps(items), pl.concat(notes)
    seen: list[tuple[int, int]] = []
    serial = augment(reps, notes_df, AugmentConfig(workers=1), progress=lambda i, n: seen.append((i, n)))
    parallel = augment(reps, notes_df, AugmentConfig(workers=2))
    assert serial.table.equals(parallel.table)
    assert serial.counts == parallel.counts
    assert seen == [(i + 1, 70) for i in range(70)]
    # pitches 40+i .. 45+i: the last pieces reach 114 + 3 = 117 < 127, nothing out of range
    assert serial.counts["shifted"] == 70 * 6


# --- MIDI copies as alphaTex tabs -------------------------------------------------------------


def test_midi_text_to_atex_keeps_guitar_parts_only() -> None:
    from musicml.curate.augment import midi_text_to_atex

    guitar = _score([52, 55, 59, 64])  # E3 G3 B3 E4
    tab = midi_text_to_atex(miditext.encode(guitar))
    result = alphatex.parse(tab)
    assert result.ok, result.errors[:2]
    assert _pitches(alphatex.to_score(result.ast)) == [52, 55, 59, 64]
    assert midi_text_to_atex(miditext.encode(_score([20, 22, 24, 100]))) is None  # out of range
    assert midi_text_to_atex(miditext.encode(_score([], drums=[36, 38]))) is None  # drums only


def test_augment_midi_to_atex_adds_tabs_of_every_copy() -> None:

    guitar, bass_only = _score([52, 55, 59, 64]), _score([20, 22])
    reps = _reps([("g", "w1", "midi", miditext.encode(guitar)), ("x", "w2", "midi", miditext.encode(bass_only))])
    notes = pl.concat([note_table(guitar, "g"), note_table(bass_only, "x")])
    cfg = AugmentConfig(min_shift=-1, max_shift=1, workers=1, midi_to_atex=True)
    res = augment(reps, notes, cfg)
    tabs = res.table.filter(pl.col("format") == "atex")
    assert sorted(tabs["aug_id"]) == ["g+1@atex", "g-1@atex", "g@atex"]
    assert set(tabs["work_id"]) == {"w1"}  # the same work: never straddles splits
    for row in tabs.iter_rows(named=True):
        score = alphatex.to_score(alphatex.parse(row["text"]).ast)
        assert _pitches(score) == [p + row["shift"] for p in [52, 55, 59, 64]]
    assert res.counts["midi_as_atex"] == 3 and res.counts["midi_without_guitar_part"] == 3
    assert "midi_as_atex" not in augment(reps, notes, AugmentConfig(workers=1)).counts


def test_midi_to_atex_on_real_midi(derived) -> None:
    from musicml.curate.augment import midi_text_to_atex

    score = symusic.Score(str(derived.multitrack[0]))
    tab = midi_text_to_atex(miditext.encode(score))
    result = alphatex.parse(tab)
    assert result.ok and len(result.ast.tracks) >= 1
    assert alphatex.to_score(result.ast).note_num() > 200  # of 239
