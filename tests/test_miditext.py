"""MIDI text: round trips on real MIDI, tolerant and strict decoding, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPORA, derived_corpus, shared_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symusic import Note, Score, Tempo, TimeSignature, Track

from musicml.formats.midi.text import (
    MidiTextError,
    decode,
    encode,
    pitch_name,
    read_grid,
    validate,
    velocity_bin_value,
)


def expected_notes(score: Score, grid: int, bins: int, max_tracks: int | None = None):
    """The documented quantization, computed independently of the module with plain ints."""
    tpq = score.tpq
    tracks = []
    for tr in score.tracks:
        merged: dict[tuple[int, int], tuple[int, int]] = {}
        for n in tr.notes:
            on = (2 * n.time * grid + tpq) // (2 * tpq)
            end = (2 * (n.time + max(n.duration, 0)) * grid + tpq) // (2 * tpq)
            dur = max(1, end - on)
            key = (on, n.pitch)
            if key in merged:
                d0, v0 = merged[key]
                merged[key] = (max(d0, dur), max(v0, n.velocity))
            else:
                merged[key] = (dur, n.velocity)
        if merged:
            notes = sorted(
                (on, p, d, velocity_bin_value(v, bins)) for (on, p), (d, v) in merged.items()
            )
            tracks.append((int(tr.program), bool(tr.is_drum), notes))
    if max_tracks is not None and len(tracks) > max_tracks:
        ranked = sorted(range(len(tracks)), key=lambda i: (-len(tracks[i][2]), i))
        tracks = [tracks[i] for i in sorted(ranked[:max_tracks])]
    return tracks


def decoded_notes(score: Score, grid: int):
    f = score.tpq // grid
    out = []
    for tr in score.tracks:
        notes = sorted((n.time // f, n.pitch, n.duration // f, n.velocity) for n in tr.notes)
        out.append((int(tr.program), bool(tr.is_drum), notes))
    return out


def assert_round_trip(score: Score, grid: int = 4, bins: int = 8, max_tracks=None) -> str:
    text = encode(score, grid=grid, velocity_bins=bins, max_tracks=max_tracks)
    assert validate(text) == []
    back = decode(text, strict=True)
    assert back.tpq % grid == 0
    assert decoded_notes(back, grid) == expected_notes(score, grid, bins, max_tracks)
    # encoding is a fixed point: the decoded score encodes to the same text
    assert encode(back, grid=grid, velocity_bins=bins) == text
    return text


POP909_SAMPLE = ["001.mid", "002.mid", "057.mid", "123.mid", "500.mid", "909.mid"]
_D = derived_corpus()
REAL_MIDI = [  # RockyRoadToDublinJig.mid: a track name whose 24-character cut ends in "_" (was a bug)
    *_D.midi,
    *_D.multitrack, _D.band, *shared_files("midi", "pop909", names=POP909_SAMPLE),
]


@pytest.mark.parametrize("path", REAL_MIDI, ids=lambda p: f"{p.parent.name}/{p.name}" if isinstance(p, Path) else None)
def test_round_trip_real_midi(path: Path):
    score = Score(path)
    text = assert_round_trip(score)
    assert text.startswith("MIDI grid=4 vel=8\ntrack t0 program=")
    # tempo and time signature survive
    back = decode(text)
    assert back.time_signatures[0].numerator == score.time_signatures[0].numerator
    assert round(back.tempos[0].qpm) == round(score.tempos[0].qpm)
    if path.parent.name == "pop909":
        assert text.startswith("MIDI grid=4 vel=8\ntrack t0 program=0 name=MELODY\n")
        assert [t.name for t in back.tracks] == ["MELODY", "BRIDGE", "PIANO"]


@pytest.mark.parametrize("grid,bins", [(12, 16), (1, 1), (6, 128)])
def test_round_trip_other_grids(grid, bins):
    score = Score(_D.multitrack[0])
    assert_round_trip(score, grid=grid, bins=bins)


def test_velocity_within_a_bin():
    score = Score(_D.band)
    back = decode(encode(score, grid=480, velocity_bins=8), strict=True)
    for a, b in zip(score.tracks, back.tracks):
        va = sorted((n.time, n.pitch, n.velocity) for n in a.notes)
        vb = sorted((n.time, n.pitch, n.velocity) for n in b.notes)
        assert len(va) == len(vb)
        assert all(abs(x[2] - y[2]) <= 8 for x, y in zip(va, vb))


def edge_files() -> list[Path]:
    """Every readable-looking MIDI of the shared edge cases (none without them) and the derived files."""
    root = CORPORA / "midi" / "edge"
    files = sorted(
        p
        for p in (root.rglob("*") if root.is_dir() else [])
        if p.suffix.lower() in (".mid", ".midi") and "corrupted" not in str(p)
    )
    return [*files, *_D.multitrack, _D.band, _D.empty_midi]  # (the tunes: test_round_trip_real_midi)


def test_round_trip_edge_files():
    checked = 0
    for path in edge_files():
        try:
            score = Score(path)
        except Exception:  # a file symusic itself cannot read is not ours to test
            continue
        assert_round_trip(score, max_tracks=16)
        checked += 1
    assert checked >= (40 if len(edge_files()) > 40 else len(_D.multitrack) + 2)


@pytest.mark.parametrize("path", [_D.band, *shared_files("midi", "edge", "symusic-testcases", "Multitrack_MIDIs",
                                                          names=["Funkytown.mid"])], ids=lambda p: p.name)
def test_multitrack_drums_programs(path: Path):
    score = Score(path)
    text = assert_round_trip(score)
    assert " drum" in text
    back = decode(text)
    assert any(t.is_drum for t in back.tracks)
    assert {t.program for t in back.tracks} == {t.program for t in score.tracks if t.note_num()}


@pytest.mark.parametrize("path", [_D.band, *shared_files("midi", "edge", "symusic-testcases", "Multitrack_MIDIs",
                                                          names=["Mr. Blue Sky.mid"])], ids=lambda p: p.name)
def test_max_tracks_keeps_the_biggest(path: Path):
    score = Score(path)
    assert_round_trip(score, max_tracks=2)
    kept = decode(encode(score, max_tracks=2)).tracks
    third = sorted((t.note_num() for t in score.tracks), reverse=True)[2]
    assert len(kept) == 2 and min(t.note_num() for t in kept) >= third


def built_score() -> Score:
    """Tempo and time-signature changes, drums, a triplet, a long note, a chord."""
    s = Score(480)
    s.time_signatures.append(TimeSignature(0, 4, 4))
    s.time_signatures.append(TimeSignature(1920, 3, 4))  # bar 2
    s.time_signatures.append(TimeSignature(1920 + 1440 * 2 + 240, 6, 8))  # mid-bar: moves on
    s.tempos.append(Tempo(0, qpm=100))
    s.tempos.append(Tempo(960, qpm=140.4))  # mid-bar tempo change
    s.tempos.append(Tempo(1920, qpm=140))  # same after rounding: dropped
    piano = Track("Grand Piano", 0, False)
    for t, d, p, v in [
        (0, 480, 60, 90),
        (0, 480, 64, 70),
        (0, 480, 67, 70),
        (480, 3000, 48, 127),
        (1920, 160, 72, 40),
        (2080, 160, 74, 40),
        (2240, 160, 76, 40),
    ]:
        piano.notes.append(Note(t, d, p, v))
    drums = Track("Drums", 0, True)
    for k in range(16):
        drums.notes.append(Note(k * 480, 60, 36 if k % 2 == 0 else 38, 100))
    bass = Track("", 33, False)
    bass.notes.append(Note(5000, 240, 0, 1))
    bass.notes.append(Note(5000, 240, 127, 127))
    s.tracks.extend([piano, drums, bass])
    return s


def test_tempo_time_signature_drums_triplets():
    s = built_score()
    text = assert_round_trip(s, grid=12)
    lines = text.splitlines()
    assert lines[1:4] == [
        "track t0 program=0 name=Grand_Piano",
        "track t1 program=0 drum name=Drums",
        "track t2 program=33",
    ]
    assert lines[4] == "bar ts=4/4 tempo=100 @24 tempo=140"
    assert "bar ts=3/4" in lines
    assert "bar ts=6/8" in lines
    assert "t1 @0 v104 36:2 @12 38:2" in text  # drums as MIDI numbers
    assert "C-1:" in text and "G9:" in text
    back = decode(text)
    assert [(t.time, t.numerator, t.denominator) for t in back.time_signatures] == [
        (0, 4, 4),
        (1920, 3, 4),
        (1920 + 1440 * 3, 6, 8),
    ]
    assert [(t.time, round(t.qpm)) for t in back.tempos] == [(0, 100), (960, 140)]
    assert back.tracks[1].is_drum and back.tracks[2].program == 33


def test_default_tempo_and_signature():
    s = Score(96)
    tr = Track("", 0, False)
    tr.notes.append(Note(0, 96, 60, 64))
    s.tracks.append(tr)
    text = encode(s)
    assert "bar ts=4/4 tempo=120" in text
    assert_round_trip(s)


def test_empty_score():
    s = Score(480)
    assert encode(s) == "MIDI grid=4 vel=8\n"
    back = decode(encode(s), strict=True)
    assert back.note_num() == 0 and len(back.tracks) == 0
    for empty in [_D.empty_midi, *shared_files("midi", "edge", "symusic-testcases", "One_track_MIDIs",
                                                names=["empty.mid"])]:
        assert decode(encode(Score(empty))).note_num() == 0


def test_pitch_names():
    assert pitch_name(60) == "C4" and pitch_name(61) == "C#4" and pitch_name(0) == "C-1"
    text = "MIDI grid=4\ntrack t0\nbar\nt0 @0 v64 C4:4 Db4:4 Bb3:4 B#3:4 69:4\n"
    assert sorted(n.pitch for n in decode(text, strict=True).tracks[0].notes) == [
        58,
        60,
        60,
        61,
        69,
    ]


def test_strict_errors_name_line_and_column():
    text = "MIDI grid=4\ntrack t0 program=0\nbar\nt0 @0 v64 C4:4 X9:2 E4:4\n"
    with pytest.raises(MidiTextError) as e:
        decode(text, strict=True)
    assert (e.value.line, e.value.col) == (4, 16)
    assert "X9:2" in str(e.value) and str(e.value).startswith("4:16:")
    assert validate(text) == ["4:16: unknown token 'X9:2'"]
    # the tolerant decoder keeps the valid notes around the junk
    assert [n.pitch for n in decode(text).tracks[0].notes] == [60, 64]


@pytest.mark.parametrize(
    "text,message",
    [
        ("bar\n", "1:1: missing 'MIDI' header"),
        ("MIDI\nbar\nt0 @0 C4:1\n", "3:1: undeclared track 't0'"),
        ("MIDI\ntrack t0\nbar\nC4:1\n", "4:1: 'C4:1' outside a track section"),
        ("MIDI\ntrack t0\nbar\nt0 @16 C4:1\n", "4:4: position '@16' outside the bar (length 16)"),
        ("MIDI\ntrack t0\nbar\nt0 v0 C4:1\n", "4:4: bad velocity 'v0' (1..127)"),
        ("MIDI\ntrack t0\nbar\nt0 @0 C4:0\n", "4:7: unknown token 'C4:0'"),
        ("MIDI\ntrack t0 program=128\n", "2:10: bad program 'program=128' (0..127)"),
        ("MIDI\nbar ts=3/5\n", "2:5: bad time signature 'ts=3/5'"),
        (
            "MIDI\ntrack t0\nbar\nt0 ts=3/4\n",
            "4:4: time signature 'ts=3/4' must follow 'bar' directly",
        ),
        ("MIDI\nbar tempo=-3\n", "2:5: bad tempo 'tempo=-3'"),
        (
            "MIDI\ntrack t0\nbar\ngrid=8\n",
            "4:1: grid= must come in the header, before tracks and bars",
        ),
        ("MIDI\ntrack t0\ntrack t0\n", "3:7: track t0 declared twice"),
    ],
)
def test_validate_messages(text, message):
    assert validate(text) == [message]
    with pytest.raises(MidiTextError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        decode(text, strict=True)


def test_tolerant_decode_of_truncated_text():
    text = encode(Score(_D.multitrack[0]))
    full = decode(text).note_num()
    for cut in (len(text) // 3, len(text) // 2, len(text) - 3):
        part = decode(text[:cut])
        assert 0 < part.note_num() <= full
    # a truncated last note token ("C4:" or "C") is dropped, the rest is kept
    assert decode("MIDI\ntrack t0\nbar\nt0 @0 v64 C4:4 E4:").note_num() == 1


def test_undeclared_track_is_created_when_tolerant():
    back = decode("MIDI\nbar\nt3 @0 v70 60:2 junk 62:2\n")
    assert len(back.tracks) == 1 and back.tracks[0].note_num() == 2


_alphabet = st.sampled_from(
    [
        "MIDI",
        "grid=4",
        "grid=0",
        "grid=12",
        "vel=8",
        "track",
        "t0",
        "t1",
        "t99999999",
        "program=5",
        "drum",
        "name=x",
        "bar",
        "ts=3/4",
        "ts=0/4",
        "ts=7/8",
        "ts=1/64",
        "tempo=90",
        "tempo=nan",
        "tempo=1e309",
        "@0",
        "@3",
        "@99",
        "@",
        "v",
        "v64",
        "v0",
        "C4:1",
        "C4:",
        "G9:3",
        "127:2",
        "128:1",
        ":",
        "\n",
        " ",
        "x",
        "é",
        "٣:٣",
        "@١",
        "C4:99999999999",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_alphabet, max_size=60), st.text(max_size=40))
def test_random_garbage_never_raises(tokens, noise):
    text = " ".join(tokens) + noise
    score = decode(text)
    assert isinstance(score, Score)
    problems = validate(text)
    assert all(p.split(":", 2)[0].isdigit() for p in problems)
    if problems:
        with pytest.raises(MidiTextError):
            decode(text, strict=True)
    else:
        decode(text, strict=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    decode(data.decode("utf-8", errors="replace"))


def test_read_grid_and_out_of_range_pitches():
    assert read_grid(encode(built_score(), grid=12)) == 12
    assert read_grid("MIDI\nbar\n") == 4
    s = Score(480)
    tr = Track("", 0, False)
    tr.notes.append(Note(0, 480, -2, 80))  # symusic keeps pitches as int8
    tr.notes.append(Note(0, 480, 60, 80))
    s.tracks.append(tr)
    assert [n.pitch for n in decode(encode(s)).tracks[0].notes] == [60]
