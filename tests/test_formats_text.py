"""Readers: text decoding, the MIDI loader, ABC split/parse/transpose, the note table."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import symusic
from conftest import derived_corpus, shared_files

from musicml.formats import EXTENSIONS, FORMATS, ScoreError, detect_format
from musicml.formats.abc import (
    Tune,
    parse_tune,
    read_abc,
    shift_key_signatures,
    split_tunes,
    transpose_tune,
)
from musicml.formats.midi import load_midi
from musicml.formats.native import captured_native_output
from musicml.formats.text import decode_text
from musicml.ingest.note_table import NOTE_SCHEMA, TPQ, note_table, piece_stats

SYMUSIC_CASES = ("midi", "edge", "symusic-testcases")


def _pitches(score: symusic.Score) -> list[int]:
    return sorted(n.pitch for t in score.tracks for n in t.notes)


def _from_abc(text: str) -> symusic.Score:
    with captured_native_output():
        return symusic.Score.from_abc(text)


# --- format detection and the error type ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.mid", "midi"), ("a.MIDI", "midi"), ("song.kar", "midi"), ("s.SMF", "midi"), ("b.abc", "abc"), ("c.atex", "atex"), ("c.alphatex", "atex"),
     ("d.txt", None), ("noext", None), ("x.mid.bak", None)],
)
def test_detect_format(name: str, fmt: str | None) -> None:
    assert detect_format(name) == fmt
    assert detect_format(Path("dir") / name) == fmt


def test_extensions_map_to_known_formats() -> None:
    assert set(EXTENSIONS.values()) == set(FORMATS)


def test_score_error_str_names_source_line_col() -> None:
    assert str(ScoreError("a.abc", "bad", 3, 7)) == "a.abc:3:7: bad"
    assert str(ScoreError("a.abc", "bad", 3)) == "a.abc:3: bad"
    assert str(ScoreError("a.mid", "bad")) == "a.mid: bad"
    err = ScoreError("f", "m", 1, 2)
    assert (err.source, err.message, err.line, err.col) == ("f", "m", 1, 2)
    assert isinstance(err, ValueError)


# --- decode_text -----------------------------------------------------------------------------


def test_decode_utf8_and_bom() -> None:
    assert decode_text("X:1\nT:Café ♪\n".encode(), "a.abc") == ("X:1\nT:Café ♪\n", "utf-8")
    assert decode_text(b"\xef\xbb\xbfX:1\n", "a.abc") == ("X:1\n", "utf-8")


def test_decode_allows_tab_cr_formfeed() -> None:
    text, enc = decode_text(b"a\tb\r\nc\x0cd\n", "f")
    assert text == "a\tb\r\nc\x0cd\n" and enc == "utf-8"


def test_decode_cp1252_fallback() -> None:
    data = "X:1\nT:Caf\u00e9 \u2019s reel\nK:G\n".encode("cp1252")
    assert decode_text(data, "old.abc") == ("X:1\nT:Caf\u00e9 \u2019s reel\nK:G\n", "cp1252")


@pytest.mark.parametrize(("bom", "codec"), [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
                                           (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be")])
def test_decode_utf16_and_utf32_by_their_byte_order_mark(bom: bytes, codec: str) -> None:
    text = "X:1\nT:Caf\u00e9 \u266f\nK:G\nGABc|\n"
    assert decode_text(bom + text.encode(codec), "win.abc") == (text, codec[:6])


def test_decode_utf16_errors_name_line_and_column() -> None:
    with pytest.raises(ScoreError, match=r"^cut\.abc:2:3: not valid UTF-16 text \(unexpected end of data\)"):
        decode_text(b"\xff\xfe" + "X:1\nT:".encode("utf-16-le") + b"\x00\xd8", "cut.abc")
    with pytest.raises(ScoreError, match=r"^ctl\.abc:2:1: binary data .*U\+0001"):
        decode_text(b"\xff\xfe" + "X:1\n\x01".encode("utf-16-le"), "ctl.abc")


def test_decode_utf16_without_byte_order_mark_is_named() -> None:
    for codec in ("utf-16-le", "utf-16-be"):
        with pytest.raises(ScoreError, match="UTF-16 text without a byte-order mark"):
            decode_text("X:1\nT:Caf\u00e9\nK:C\ncdef|\n".encode(codec), "nobom.abc")
    midi = derived_corpus().midi[0].read_bytes()  # binary: NULs anywhere, not named UTF-16
    with pytest.raises(ScoreError) as info:
        decode_text(midi, "renamed.abc")
    assert "UTF-16" not in str(info.value)


def test_decode_cp1252_refused_without_legacy() -> None:
    data = "X:1\nT:Caf\u00e9\n".encode("cp1252")
    with pytest.raises(ScoreError) as info:
        decode_text(data, "old.abc", allow_legacy=False)
    assert info.value.line == 2 and info.value.col == 6
    assert str(info.value).startswith("old.abc:2:6: not valid UTF-8 text (byte 0xe9")


def test_decode_invalid_utf8_with_control_bytes_names_line_col() -> None:
    data = b"X:1\nT:ok\nK:C\nab\xff\x01cd\n"
    with pytest.raises(ScoreError) as info:
        decode_text(data, "bad.abc")
    err = info.value
    assert (err.source, err.line, err.col) == ("bad.abc", 4, 3)
    assert "0xff" in str(err) and str(err).startswith("bad.abc:4:3:")


def test_decode_undefined_cp1252_byte_is_rejected() -> None:
    # 0x81 is undefined in cp1252, so the legacy fallback cannot rescue it
    with pytest.raises(ScoreError, match=r"^f:2:3: not valid UTF-8 text \(byte 0x81"):
        decode_text(b"ab\ncd\x81\n", "f")


def test_decode_valid_utf8_with_nul_is_binary() -> None:
    with pytest.raises(ScoreError) as info:
        decode_text(b"X:1\nT:a\nK:C\nab\x00cd\n", "bin.abc")
    assert (info.value.line, info.value.col) == (4, 3)
    assert "control character U+0000" in str(info.value)


def test_decode_first_line_control_column() -> None:
    with pytest.raises(ScoreError, match=r"^f:1:4: binary data"):
        decode_text(b"abc\x07", "f")


# --- load_midi -------------------------------------------------------------------------------


def test_load_midi_real_file(derived) -> None:
    path = derived.midi[0]
    score = load_midi(path.read_bytes(), path.name)
    assert isinstance(score, symusic.Score) and score.note_num() > 0


CORRUPT = [*derived_corpus().corrupt_midi.values(), *shared_files(
    *SYMUSIC_CASES, "MIDIs_corrupted", names=["Issue104_Bizarre_Love_Triangle2.mid", "ValueError_Control168.mid"])]


@pytest.mark.parametrize("path", CORRUPT, ids=lambda p: p.name)
def test_load_midi_corrupt(path: Path) -> None:
    name = path.name
    with pytest.raises(ScoreError) as info:
        load_midi(path.read_bytes(), name)
    assert str(info.value).startswith(f"{name}: corrupt MIDI: ")


def test_load_midi_truncated(derived) -> None:
    data = derived.midi[0].read_bytes()
    with pytest.raises(ScoreError, match=r"^cut\.mid: corrupt MIDI: .*chunk length"):
        load_midi(data[: len(data) // 2], "cut.mid")


def test_load_midi_not_midi() -> None:
    with pytest.raises(ScoreError, match=r"^fake\.mid: not a Standard MIDI File: a RIFF file of type b'WAVE'"):
        load_midi(b"RIFF\x00\x00\x00\x00WAVEfmt junk junk", "fake.mid")
    with pytest.raises(ScoreError, match=r"^fake\.mid: not a Standard MIDI File: header is b'OggS'"):
        load_midi(b"OggS\x00\x02" + b"\x00" * 20, "fake.mid")


@pytest.mark.parametrize("path", [derived_corpus().empty_midi, *shared_files(
    *SYMUSIC_CASES, "One_track_MIDIs", names=["empty.mid"])], ids=lambda p: p.parent.name)
def test_load_midi_no_notes(path: Path) -> None:
    with pytest.raises(ScoreError, match=r"^empty\.mid: MIDI file holds no notes$"):
        load_midi(path.read_bytes(), "empty.mid")


def test_load_midi_short_file_is_rejected() -> None:
    with pytest.raises(ScoreError, match="^short.mid: "):
        load_midi(b"MThd", "short.mid")


def test_load_midi_short_file_reason_is_not_self_contradictory() -> None:
    with pytest.raises(ScoreError) as info:
        load_midi(b"MThd\x00\x00\x00\x06", "short.mid")
    assert "expected b'MThd'" not in str(info.value)


# --- ABC: split_tunes ------------------------------------------------------------------------

MULTI = (
    "%abc-2.1\n"        # 1
    "H:file header\n"   # 2
    "\n"                # 3
    "X:1\n"             # 4
    "T:First\n"         # 5
    "M:4/4\n"           # 6
    "L:1/8\n"           # 7
    "K:G\n"             # 8
    "GABc dedB|   \n"   # 9
    "\n"                # 10
    "X:2\n"             # 11
    "T:Second\n"        # 12
    "K:D\n"             # 13
    "DEFG ABcd|\n"      # 14
    "\n\n"              # 15, 16
    "X:3\n"             # 17
    "K:C\n"             # 18
    "CDEF GABc|\n"      # 19
)


def test_split_tunes_lines_titles_and_text() -> None:
    tunes = split_tunes(MULTI)
    assert [t.index for t in tunes] == [0, 1, 2]
    assert [t.line for t in tunes] == [4, 11, 17]
    assert [t.title for t in tunes] == ["First", "Second", ""]
    assert tunes[0].text == "X:1\nT:First\nM:4/4\nL:1/8\nK:G\nGABc dedB|"  # trailing blanks stripped
    assert tunes[2].text == "X:3\nK:C\nCDEF GABc|"
    # informational fields of the file header belong to no tune
    assert all("H:file header" not in t.text for t in tunes)
    for t in tunes:  # each tune's first line sits at its line number in the file
        assert MULTI.split("\n")[t.line - 1] == t.text.split("\n")[0]


def test_split_tunes_copies_musical_file_header_fields() -> None:
    text = "%abc-2.1\nL:1/16\nM:3/4\nH:history\n\nX:1\nT:a\nK:C\nCDEF|\n\nX:2\nT:b\nK:G\nGABc|\n"
    tunes = split_tunes(text)
    assert [t.text.split("\n")[:3] for t in tunes] == [["X:1", "L:1/16", "M:3/4"], ["X:2", "L:1/16", "M:3/4"]]
    assert all("H:history" not in t.text for t in tunes)


def test_split_tunes_crlf_and_no_x_header() -> None:
    tunes = split_tunes(MULTI.replace("\n", "\r\n"))
    assert [t.line for t in tunes] == [4, 11, 17]
    single = split_tunes("T:Lonely\nK:C\nCDEF|\n")
    assert len(single) == 1 and single[0].line == 1 and single[0].title == "Lonely"


def test_split_tunes_empty_and_x_inside_line() -> None:
    assert split_tunes("") == []
    assert split_tunes("\n\n  \n") == []
    tunes = split_tunes("X:1\nT:a\nK:C\nCD| % not X:2 here\nEF|\n")
    assert len(tunes) == 1


# --- ABC: parse_tune / read_abc --------------------------------------------------------------


def test_parse_tune_relocates_native_messages() -> None:
    text = "% comment\n\nX:1\nT:Short bar\nM:4/4\nL:1/4\nK:C\nCDEF|GA B|\n"
    tunes = split_tunes(text)
    tune = parse_tune(tunes[0], "f.abc")
    assert tune.score is not None and tune.score.note_num() == 7
    assert tune.messages, "symusic warns about the short bar"
    m = re.match(r"^f\.abc:(\d+):(\d+): warning: ", tune.messages[0])
    assert m, tune.messages
    assert int(m.group(1)) == 8  # the music line in the file, not in the tune


def test_parse_tune_without_notes() -> None:
    tune = Tune(index=4, line=12, text="X:5\nT:Silence\nK:C\n", title="Silence")
    with pytest.raises(ScoreError, match=r"^s\.abc:12: tune 5 \(Silence\) holds no notes"):
        parse_tune(tune, "s.abc")


def test_parse_tune_symusic_failure_is_score_error() -> None:
    tune = split_tunes("X:1\nT:Broken key\nK:Q\nCDEF|\n")[0]
    with pytest.raises(ScoreError, match=r"^b\.abc:1: tune 1 \(Broken key\): "):
        parse_tune(tune, "b.abc")


def test_read_abc_mixed_good_and_bad() -> None:
    text = "X:1\nT:Good\nL:1/4\nK:C\nCDEF|\n\nX:2\nT:Empty\nK:C\n\nX:3\nT:Also good\nL:1/4\nK:G\nGABc|\n"
    good, problems = read_abc(text, "m.abc")
    assert [t.title for t in good] == ["Good", "Also good"]
    assert len(problems) == 1 and problems[0].startswith("m.abc:7: tune 2 (Empty) holds no notes")


def test_read_abc_nothing_readable() -> None:
    with pytest.raises(ScoreError, match=r"^n\.abc: no ABC tune found"):
        read_abc("", "n.abc")
    with pytest.raises(ScoreError, match=r"^n\.abc: no readable tune among 1: n\.abc:1: tune 1"):
        read_abc("X:1\nT:Nothing\nK:C\n", "n.abc")


@pytest.fixture(scope="module", params=[derived_corpus().big_abc, *shared_files("abc", names=["irish.abc"])],
                ids=lambda p: p.name)
def irish(request) -> tuple[str, list[Tune], list[str], str]:
    """A real collection of several hundred tunes in one file (music21's, and irish.abc when shared)."""
    path = request.param
    text = path.read_text(encoding="utf-8")
    good, problems = read_abc(text, path.name)
    return text, good, problems, re.escape(path.name)


def test_read_abc_irish_collection(irish) -> None:
    text, good, problems, name = irish
    n_x = len(re.findall(r"^X:", text, flags=re.MULTILINE))
    assert n_x > 700
    assert len(good) + len(problems) == n_x
    assert len(good) > 700  # hundreds of readable tunes
    assert all(t.score is not None and t.score.note_num() > 0 for t in good)
    lines = text.replace("\r\n", "\n").split("\n")
    for t in good:
        assert lines[t.line - 1].startswith("X:")
    assert [t.index for t in good] == sorted(t.index for t in good)
    for p in problems:
        assert re.match(rf"^{name}:\d+: tune \d+ ", p), p


def test_read_abc_irish_messages_carry_line_col_inside_their_tune(irish) -> None:
    text, good, _, name = irish
    n_lines = text.count("\n") + 1
    starts = [t.line for t in good]
    messages = 0
    for i, t in enumerate(good):
        end = starts[i + 1] if i + 1 < len(starts) else n_lines + 1
        for m in t.messages:
            messages += 1
            hit = re.match(rf"^{name}:(\d+)(?::(\d+))?: (warning|error|note): ", m)
            assert hit, m
            if hit.group(2):
                assert t.line <= int(hit.group(1)) < end, (t.line, end, m)
    assert messages > 0
    assert any(re.match(rf"^{name}:\d+:\d+: ", m) for t in good for m in t.messages)


# --- ABC: transposition ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [-3, 2, 5])
def test_transpose_tune_keeps_header_and_shifts_pitches(irish, k: int) -> None:
    _, good, _, _ = irish
    tune = good[0]
    out = transpose_tune(tune.text, tune.score, k)
    out_lines = out.split("\n")
    original_header = [ln for ln in tune.text.split("\n") if re.match(r"^[XT]:", ln)]
    assert out_lines[: len(original_header)] == original_header
    assert sum(1 for ln in out_lines if ln.startswith("X:")) == 1
    moved = _from_abc(out)
    assert _pitches(moved) == [p + k for p in _pitches(tune.score)]


def test_transpose_tune_small_synthetic() -> None:
    text = "X:7\nT:Scale\nC:Trad\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n"
    score = _from_abc(text)
    out = transpose_tune(text, score, 2)
    assert out.startswith("X:7\nT:Scale\nC:Trad\n")
    moved = _from_abc(out)
    assert _pitches(moved) == [p + 2 for p in _pitches(score)]
    assert [ks.key for ks in moved.key_signatures][:1] == [2]  # C major + 2 = D major (2 sharps)
    # the input score is not modified
    assert _pitches(score) == _pitches(_from_abc(text))


def test_shift_key_signatures() -> None:
    score = _from_abc("X:1\nT:t\nL:1/4\nK:D\nDEFG|\n")
    assert [ks.key for ks in score.key_signatures] == [2]
    shift_key_signatures(score, 2)
    assert [ks.key for ks in score.key_signatures] == [4]  # E major
    shift_key_signatures(score, -4)
    assert [ks.key for ks in score.key_signatures] == [0]  # C major
    shift_key_signatures(score, 1)
    assert [ks.key for ks in score.key_signatures] == [-5]  # Db (5 flats), not C# (7 sharps)


@pytest.mark.parametrize("key", range(-7, 8))
def test_shift_key_signatures_range_and_congruence(key: int) -> None:
    for k in range(-6, 7):
        score = symusic.Score(480)
        score.key_signatures.append(symusic.KeySignature(0, key, 0))
        shift_key_signatures(score, k)
        new = score.key_signatures[0].key
        assert -5 <= new <= 6
        assert (new - key - 7 * k) % 12 == 0
    score = symusic.Score(480)
    score.key_signatures.append(symusic.KeySignature(0, key, 0))
    shift_key_signatures(score, 0)
    assert score.key_signatures[0].key == (key + 5) % 12 - 5


# --- note table ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_score(derived) -> symusic.Score:
    """A real three-voice tune (music21's corpus through symusic)."""
    return symusic.Score(str(derived.multitrack[0]))


def test_note_table_columns_and_dtypes(real_score: symusic.Score) -> None:
    df = note_table(real_score, "song-001")
    assert df.schema == pl.Schema(NOTE_SCHEMA)
    assert len(df) == real_score.note_num()
    assert df["piece_id"].unique().to_list() == ["song-001"]
    assert df["track"].unique().sort().to_list() == [0, 1, 2]
    assert df.equals(df.sort(["onset", "pitch", "track"]))
    assert df["duration"].min() >= 1
    assert df["pitch"].min() >= 0 and df["pitch"].max() <= 127
    assert not df["is_drum"].any()
    # ticks at TPQ per quarter: the last note ends where it ends in the score, in quarters
    last_end = max(n.end for t in real_score.tracks for n in t.notes)
    assert abs((df["onset"] + df["duration"]).max() / TPQ - last_end / real_score.ticks_per_quarter) < 0.1


@pytest.mark.parametrize("tpq", [960, 1920])
def test_note_table_resolution_invariant(real_score: symusic.Score, tpq: int) -> None:
    base = note_table(real_score, "p")
    resampled = real_score.resample(tpq=tpq)
    assert resampled.ticks_per_quarter == tpq
    assert note_table(resampled, "p").equals(base)
    # and after a save/load round trip at that resolution
    reloaded = symusic.Score.from_midi(resampled.dumps_midi())
    assert note_table(reloaded, "p").equals(base)


def test_note_table_synthetic_exact_ticks() -> None:
    def make(tpq: int) -> symusic.Score:
        s = symusic.Score(tpq)
        t = symusic.Track("lead", program=40)
        step = tpq // 4  # sixteenth notes
        for i, p in enumerate([60, 64, 67]):
            t.notes.append(symusic.Note(i * step, 2 * step, p, 90))
        drums = symusic.Track("kit", program=0, is_drum=True)
        drums.notes.append(symusic.Note(0, step, 36, 100))
        s.tracks.extend([symusic.Track("empty"), t, drums])
        return s

    a, b = note_table(make(96), "x"), note_table(make(480), "x")
    assert a.equals(b)
    assert a.select("track", "program", "is_drum", "onset", "duration", "pitch", "velocity").rows() == [
        (2, 0, True, 0, 6, 36, 100),
        (1, 40, False, 0, 12, 60, 90),
        (1, 40, False, 6, 12, 64, 90),
        (1, 40, False, 12, 12, 67, 90),
    ]


def test_note_table_empty_score() -> None:
    df = note_table(symusic.Score(480), "none")
    assert df.is_empty() and df.schema == pl.Schema(NOTE_SCHEMA)


def test_piece_stats(real_score: symusic.Score) -> None:
    stats = piece_stats(real_score)
    assert stats["n_notes"] == real_score.note_num()
    assert stats["n_tracks"] == 3
    assert 0 <= stats["min_pitch"] <= stats["max_pitch"] <= 127
    assert stats["tempo"] > 0 and stats["seconds"] > 0
    assert re.match(r"^\d+/\d+$", stats["time_signature"])
    empty = piece_stats(symusic.Score(480))
    assert empty["n_notes"] == 0 and empty["min_pitch"] is None and empty["tempo"] == 120.0
    assert empty["time_signature"] == "4/4"
