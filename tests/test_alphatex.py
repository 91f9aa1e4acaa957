"""alphaTex: parser, diagnostics, serializer, notes, MIDI import, transposition, validation."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
from conftest import CORPORA, corpus_path, derived_corpus

from musicml.formats.alphatex import (
    AlphaTexError,
    Diagnostic,
    ParseResult,
    from_score,
    normalize,
    parse,
    serialize,
    to_score,
    transpose,
    validate,
)
from musicml.formats.alphatex.ast import Ident, Score
from musicml.formats.alphatex.semantics import staff_info

# docs snippets that are broken as published/extracted: "\r" of "\rc" became a line break,
# and a typo for the chord property "showfingering"
DOCS_FLAGGED = {
    "docs__alphatex___bar-metadata__003.atex": "unrecognized note value 'c'",
    "docs__alphatex___bar-metadata__011.atex": "unrecognized note value 'c'",
    "docs__alphatex___staff-metadata__007.atex": "unknown '\\chord' property 'showfingers'",
}


@lru_cache(maxsize=1)
def _corpus():
    """(shared root, {file: parse result}, files alphaTab refuses): the derived tabs, plus the
    shared alphaTex corpus (599 files) when it is there."""
    root = CORPORA / "alphatex"
    files = sorted(root.rglob("*.atex")) if root.is_dir() else []
    rejected = set()
    for sub in ("alphatab-testdata", "alphatab-website") if files else ():
        for e in json.loads((root / sub / "_conversion_log.json").read_text()):
            if "reimport_error" in e:
                rejected.add(root / sub / (e["rel"] + ".atex"))
    files += derived_corpus().atex
    parsed = {f: parse(f.read_text(encoding="utf-8"), str(f)) for f in files}
    return root, parsed, rejected


SHARED = (CORPORA / "alphatex").is_dir()


def _notes(score, track=0):
    return [(n.time, n.duration, n.pitch) for n in score.tracks[track].notes]


def _pitches_onsets(score, track=0):
    return sorted((n.time, n.pitch) for n in score.tracks[track].notes)


# --------------------------------------------------------------------------------- corpus
def test_corpus_reimportable_files_parse_without_errors():
    root, parsed, rejected = _corpus()
    assert len(parsed) > (500 if SHARED else len(derived_corpus().atex) - 1)
    unexpected = []
    for f, r in parsed.items():
        if f in rejected or f.name in DOCS_FLAGGED:
            continue
        if r.errors:
            unexpected.append(r.errors[0].format())
    assert unexpected == []


def test_corpus_files_alphatab_rejects_are_flagged():
    corpus_path("alphatex", "alphatab-testdata", "_conversion_log.json")  # alphaTab's own verdicts
    root, parsed, rejected = _corpus()
    assert len(rejected) == 8
    for f in rejected:
        assert parsed[f].errors, f
    # alphaTab's own position for fade-to-black: AT218 (8756,7)
    fade = root / "alphatab-testdata/guitarpro4/fade-to-black.gp4.atex"
    assert any(
        e.line == 8756 and e.col == 7 and "wrong note kind" in e.message
        for e in parsed[fade].errors
    )
    for name, message in DOCS_FLAGGED.items():
        r = parsed[root / "alphatab-docs" / name]
        assert any(message in e.message for e in r.errors), name


def test_corpus_round_trip_parse_serialize_parse():
    _, parsed, _ = _corpus()
    for f, r in parsed.items():
        text = serialize(r.ast)
        again = parse(text, "canonical")
        assert again.ast == r.ast, f
        assert serialize(again.ast) == text, f
        if r.ok:
            assert again.ok, (f, again.errors[:2])


def test_corpus_files_convert_to_notes():
    # every file without errors becomes a symusic Score; pitched notes stay in MIDI range
    _, parsed, _ = _corpus()
    with_notes = 0
    for f, r in parsed.items():
        if not r.ok:
            continue
        score = to_score(r.ast)
        assert len(score.tracks) >= 1 or not r.ast.tracks, f
        for track in score.tracks:
            for n in track.notes:
                assert 0 <= n.pitch <= 127 and n.duration >= 0 and n.time >= 0, (f, n)
        with_notes += score.note_num() > 0
    # shared: 491 of them (many docs snippets show metadata only, no notes); every derived tab has notes
    assert with_notes > (450 if SHARED else len(derived_corpus().atex) - 1)


# ---------------------------------------------------------------------------- basic parsing
def test_parse_exporter_style_document():
    text = """\\title "Song"
\\track ("Guitar" "gtr") {
  color "#F64A26"
  volume 12
  instrument acousticguitarsteel
}
  \\staff { score tabs }
    \\tuning (E4 B3 G3 D3 A2 E2) { label "Standard" }
    \\capo 2
    \\ts (3 4)
    \\tempo (100 "Moderate")
      12.3{h}.16 (0.1 2.2).8{d} r.4 :8 3.3*2 |
      -.3.2 x.6.4 |
"""
    r = parse(text)
    assert isinstance(r, ParseResult) and r.ok, r.diagnostics
    s = r.ast
    assert s.meta("title").values == ["Song"]
    track = s.tracks[0]
    assert track.name == "Guitar" and track.property("volume").values == [12]
    staff = track.staves[0]
    assert [m.tag for m in staff.metadata] == ["tuning", "capo"]
    bar = staff.voices[0].bars[0]
    assert [m.tag for m in bar.metadata] == ["ts", "tempo"]
    assert bar.metadata[1].values == [100, "Moderate"]
    b0 = bar.beats[0]
    assert (b0.notes[0].value, b0.notes[0].string, b0.duration) == (12, 3, 16)
    assert b0.notes[0].effects[0].name == "h"
    assert len(bar.beats[1].notes) == 2 and bar.beats[1].effects[0].name == "d"
    assert bar.beats[2].rest and bar.beats[2].duration == 4
    assert bar.beats[3].duration_change.value == 8 and bar.beats[3].multiplier == 2
    tie = staff.voices[0].bars[1].beats[0].notes[0]
    assert tie.value == Ident("-") and tie.string == 3


def test_old_style_dot_separator_and_comments_normalize_the_same():
    a = '\\title "X" \\tempo 90 . :4 3.3 4.3 | 5.3.2 |'
    b = """// a comment
\\title   "X"   /* block
comment */ \\tempo 90
.
:4 3.3
   4.3 |
5.3.2 // trailing
|"""
    c = '\\title "X" \\tempo 90 :4 3.3 4.3 | 5.3.2'
    assert normalize(a) == normalize(b) == normalize(c)
    assert parse(a).ast == parse(b).ast


def test_multiple_tracks_staves_voices():
    text = """\\track "A"
\\staff {score} \\tuning (E4 B3 G3 D3 A2 E2) 1.1 | 2.2 |
\\staff {tabs} 3.3 |
\\track "B"
\\voice 0.6.1 |
\\voice r.1 |
"""
    r = parse(text)
    assert r.ok, r.diagnostics
    assert [t.name for t in r.ast.tracks] == ["A", "B"]
    assert len(r.ast.tracks[0].staves) == 2
    assert len(r.ast.tracks[1].staves[0].voices) == 2
    assert parse(serialize(r.ast)).ast == r.ast


def test_percussion_articulations_and_lyrics():
    text = """\\track "Drums" { instrument percussion }
\\articulation defaults
\\lyrics "Hel-lo world"
("Kick (hit)" "Hi-Hat (closed)").4 :4 42 KickHit r |
"""
    r = parse(text)
    assert r.ok, r.diagnostics
    notes = _notes(to_score(r.ast))
    assert [p for _, _, p in notes] == [35, 42, 42, 35]
    assert to_score(r.ast).tracks[0].is_drum


# --------------------------------------------------------------------------- diagnostics
@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ('\\title "unterminated\n3.3.4', 1, 8, "unterminated string"),
        ("3.3.4 3.3.5 |", 1, 7, "invalid duration 5"),
        ("\\foo 3\n3.3.4", 1, 1, "unknown metadata tag '\\foo'"),
        ("3.3{h 3.3.4 |", 1, 4, "unclosed '{'"),
        ("\\tuning (E4 B3 G3 D3)\n3.5.4", 2, 1, "string 5 is out of range"),
        ("3.3.4\n  3.3{zz}.4", 2, 7, "unknown note property 'zz'"),
        ("3.3.4 : r", 1, 7, "missing duration after ':'"),
        ("(3.3 4.4 | 3.3", 1, 1, "unclosed '(' of a chord"),
        ("\\ts (4 4\n3.3.4", 1, 5, "unclosed '('"),
        ("3.3.4 \\ts 4", 1, 11, "invalid values for '\\ts'"),
        ("3.3.4 } 3.3", 1, 7, "unexpected '}'"),
        ("3.3.4 C4.4", 1, 7, "wrong note kind 'Pitched'"),
        ('3.3.4{txt "a\\qb"}', 1, 11, "unsupported escape sequence"),
        ("3.3.4 3.3.4*", 1, 12, "missing beat multiplier"),
        ("\\ts (999 4)\n3.3.4", 1, 1, "invalid time signature 999/4 (numerator 1-255"),
        ("\\ac {x 1} 3.3.4", 1, 5, "metadata '\\ac' takes no properties"),
        ("3.3{tu (0.5)}", 1, 5, "invalid tuplet 0.5"),
        ("\\title x\r.\r3.3.4 3.3.5 |", 3, 7, "invalid duration 5"),  # lines ended by \r alone
        ("\\title x\r\n.\r\n3.3.4 3.3.5 |", 3, 7, "invalid duration 5"),
        ('3.3{b ic ("x")}', 1, 7, "unknown note property 'ic'"),  # with parentheses as without
        ("\\instrument percussion\n316", 2, 1, "unknown percussion articulation 316"),
        ("\\tempo " + "9" * 4301 + "\n3.3.4", 1, 8, "number too long (4301 digits; at most 18)"),
        ("3.3{tu " + "7" * 25 + "}", 1, 8, "number too long (25 digits"),
        (":4 3.3 200.3", 1, 8, "fret 200 on string 3 sounds MIDI pitch 255, out of range 0-127"),
        ("\\tuning (E4 B3 G3 D3 A2 C-1)\n:4 -1.6", 2, 4, "sounds MIDI pitch -1"),
    ],
)
def test_documented_invalid_inputs(text, line, col, fragment):
    r = parse(text, "bad.atex")
    assert not r.ok
    match = [d for d in r.errors if fragment in d.message]
    assert match, [d.format() for d in r.diagnostics]
    d = match[0]
    assert (d.line, d.col) == (line, col), d.format()
    assert d.format().startswith(f"bad.atex:{line}:{col}: error: ")
    assert str(d) == d.format()


def test_recovery_reports_every_error():
    text = """\\title "ok"
3.3.4 3.3.5 |
\\nosuchtag 1
3.3{zz}.4 |
3.9.4 |
3.3.4{h 3.3.4 |
:x 3.3.4 |
"""
    r = parse(text, "many.atex")
    lines = sorted({d.line for d in r.errors})
    assert lines == [2, 3, 4, 5, 6, 7], [d.format() for d in r.errors]
    # the rest of the file is still there
    assert len(r.ast.tracks[0].staves[0].voices[0].bars) >= 5


def test_alphatex_error_and_normalize():
    with pytest.raises(AlphaTexError) as info:
        normalize("3.3.4 3.3.5 |\n\\bogus", source="x.atex")
    err = info.value
    assert str(err).startswith("x.atex:1:7: error: invalid duration 5")
    assert "2 errors" in str(err)
    assert all(isinstance(d, Diagnostic) for d in err.diagnostics)


def test_parse_never_raises_on_garbage():
    for text in [
        "",
        "\\",
        "{{{{",
        ")))",
        "\\track {",
        '"',
        "/",
        "/* x",
        ".",
        "::::",
        "\x00\x01",
        "-.-.-",
        "*" * 5,
    ]:
        r = parse(text)
        assert isinstance(r.ast, Score)


@pytest.mark.parametrize("text", ["\\ac{", "\\ac {x 1} 3.3", "\\ts(999 4", "\\ts (300 4)\n3.3.4", "6{tu(0.2",
                                  "\\instrument percussion)316", '\\track{r""instrument percussion{""999'])
def test_what_fuzzing_found_round_trips_and_converts(text):
    """Inputs with errors that once broke the round trip or the conversion to notes: the tree
    recovered from them serializes to text that parses back to the same tree, and converts."""
    r = parse(text)
    assert not r.ok
    assert parse(serialize(r.ast)).ast == r.ast
    to_score(r.ast)


# -------------------------------------------------------------------------------- notes
def test_pitches_from_standard_tuning_and_capo():
    r = parse("\\tuning (E4 B3 G3 D3 A2 E2)\n0.6.4 3.6.4 0.1.4 12.1.4 | (0.5 2.4 2.3).1 |")
    notes = _notes(to_score(r.ast))
    assert [p for *_, p in notes] == [40, 43, 64, 76, 45, 52, 57]
    capo = _notes(to_score(parse("\\tuning (E4 B3 G3 D3 A2 E2)\n\\capo 2\n0.6.4").ast))
    assert capo[0][2] == 42
    drop_d = _notes(to_score(parse("\\tuning (E4 B3 G3 D3 A2 D2)\n0.6.4").ast))
    assert drop_d[0][2] == 38


def test_onsets_durations_dots_tuplets_ties():
    text = "\\ts (4 4)\n:4 0.1 0.1.8 0.1 0.1.4{d} 0.1.8 | 0.1.8{tu 3} 0.1{tu 3} 0.1{tu 3} 0.1.4 0.1.2 | 0.1.2 -.1.2 |"
    s = to_score(parse(text).ast)
    assert s.ticks_per_quarter == 480
    notes = _notes(s)
    onsets = [t for t, _, _ in notes]
    durs = [d for _, d, _ in notes]
    assert onsets[:5] == [0, 480, 720, 960, 1680]
    assert durs[:5] == [480, 240, 240, 720, 240]
    assert onsets[5:10] == [1920, 2080, 2240, 2400, 2880]
    assert durs[5:8] == [160, 160, 160]
    # the tie makes one note of two halves
    assert notes[10] == (3840, 1920, 64)
    assert len(notes) == 11


def test_tempo_time_signature_rests_and_multiplier():
    s = to_score(
        parse("\\tempo 90\n\\ts (3 4) 0.1.4 r.4 0.1.4 | \\ts (2 4) \\tempo 60 0.1.8*4 |").ast
    )
    assert [round(t.qpm) for t in s.tempos] == [90, 60]
    assert [(ts.time, ts.numerator, ts.denominator) for ts in s.time_signatures] == [
        (0, 3, 4),
        (1440, 2, 4),
    ]
    assert [t for t, _, _ in _notes(s)] == [0, 960, 1440, 1680, 1920, 2160]


def test_tracks_programs_and_pitched_staff():
    text = """\\track "Piano" { instrument acousticgrandpiano }
\\tuning piano
C4.4 (E4 G4).4 |
\\track "Bass" { instrument electricbassfinger }
0.4.4 3.1.4 |"""
    r = parse(text)
    assert r.ok, r.diagnostics
    s = to_score(r.ast)
    assert [t.program for t in s.tracks] == [0, 33]
    assert [p for *_, p in _notes(s, 0)] == [60, 64, 67]
    assert [p for *_, p in _notes(s, 1)] == [28, 46]  # bass default tuning G2 D2 A1 E1


# ------------------------------------------------------------------------ MIDI -> alphaTex
def test_from_score_round_trip_simple():
    text = "\\tuning (E4 B3 G3 D3 A2 E2)\n:8 0.6 2.5 2.4 1.3 0.2 0.1 r.4 | (3.6 2.5 0.4 0.3 0.2 3.1).2 7.3.4{d} 5.3.8 |"
    s1 = to_score(parse(text).ast)
    tex = from_score(s1)
    r = parse(tex)
    assert r.ok, r.diagnostics
    s2 = to_score(r.ast)
    assert _pitches_onsets(s2) == _pitches_onsets(s1)
    assert [d for _, d, _ in _notes(s2)] == [d for _, d, _ in _notes(s1)]


def test_from_score_prefers_small_hand_movement():
    # a melody high on the neck is fingered in one hand position
    import symusic

    score = symusic.Score(480)
    track = symusic.Track(name="lead", program=27)
    for i, pitch in enumerate([69, 71, 72, 74, 76, 74, 72, 71]):
        track.notes.append(symusic.Note(i * 240, 240, pitch, 90))
    score.tracks.append(track)
    r = parse(from_score(score))
    assert r.ok
    frets = [
        n.value for b in r.ast.tracks[0].staves[0].voices[0].bars[0].beats for n in b.notes or ()
    ]
    assert max(abs(a - b) for a, b in zip(frets, frets[1:])) <= 4
    assert max(frets) - min(frets) <= 4  # one hand position
    assert _pitches_onsets(to_score(r.ast)) == _pitches_onsets(score)


def test_from_score_ties_across_bar_lines_and_drums():
    import symusic

    score = symusic.Score(480)
    g = symusic.Track(name="g", program=25)
    g.notes.append(symusic.Note(1440, 960, 64, 90))  # crosses the bar line at 1920
    d = symusic.Track(name="d", program=0, is_drum=True)
    d.notes.append(symusic.Note(0, 240, 36, 90))
    d.notes.append(symusic.Note(0, 240, 42, 90))
    score.tracks.extend([g, d])
    r = parse(from_score(score))
    assert r.ok, r.diagnostics
    s2 = to_score(r.ast)
    assert _notes(s2, 0) == [(1440, 960, 64)]
    assert s2.tracks[1].is_drum and sorted(p for *_, p in _notes(s2, 1)) == [36, 42]


def test_from_score_round_trip_on_corpus_files():
    _, parsed, _ = _corpus()
    checked = 0
    for f, r in parsed.items():
        if checked >= 25 or not r.ok or (SHARED and "alphatab-testdata" not in str(f)) or not r.ast.tracks:
            continue
        text = f.read_text(encoding="utf-8")
        if "{gr" in text or "tu " in text or " gr" in text:
            continue
        track = r.ast.tracks[0]
        if len(track.staves) != 1 or len(track.staves[0].voices) != 1:
            continue
        info = staff_info(track, track.staves[0])
        if info.kind != "fretted":
            continue
        s1 = to_score(r.ast)
        if not len(s1.tracks[0].notes):
            continue
        r2 = parse(from_score(s1, tuning=info.tuning, max_tracks=1))
        assert r2.ok, (f, r2.errors[:2])
        assert _pitches_onsets(to_score(r2.ast)) == _pitches_onsets(s1), f
        checked += 1
    assert checked >= 10


# ----------------------------------------------------------------------------- transpose
def test_transpose_keeps_notes_playable_and_moves_strings():
    r = parse("\\tuning (E4 B3 G3 D3 A2 E2)\n(5.6 2.4).4 1.1.4 -.1.4 22.1.4 |")
    s0 = to_score(r.ast)
    down = transpose(r.ast, -3)
    assert down is not None
    assert [p - 3 for *_, p in _notes(s0)] == [p for *_, p in _notes(to_score(down))]
    beats = down.tracks[0].staves[0].voices[0].bars[0].beats
    assert [(n.value, n.string) for n in beats[0].notes] == [
        (2, 6),
        (4, 5),
    ]  # 2.4 moved to string 5
    assert (beats[1].notes[0].value, beats[1].notes[0].string) == (3, 2)  # 1.1 moved to string 2
    assert beats[2].notes[0].string == 2  # the tie follows its note
    assert parse(serialize(down)).ok
    up = transpose(r.ast, 2, frets=24)
    assert up is not None and [p + 2 for *_, p in _notes(s0)] == [
        p for *_, p in _notes(to_score(up))
    ]
    assert transpose(r.ast, 3, frets=24) is None  # 22.1 + 3 is beyond fret 24 on every string


def test_transpose_impossible_returns_none_and_leaves_input_alone():
    r = parse("\\tuning (E4 B3 G3 D3 A2 E2)\n0.6.4 24.1.4 |")
    before = serialize(r.ast)
    assert transpose(r.ast, -1) is None  # below the low E
    assert transpose(r.ast, 1, frets=24) is None  # above fret 24 on the top string
    assert serialize(r.ast) == before
    pitched = parse("\\tuning piano\nC4.4 G8.4")
    assert transpose(pitched.ast, 1) is not None
    assert transpose(pitched.ast, 1).tracks[0].staves[0].voices[0].bars[0].beats[0].notes[
        0
    ].value == Ident("C#4")


def test_transpose_corpus_files_shift_pitches_or_none():
    _, parsed, _ = _corpus()
    done = 0
    for f, r in parsed.items():
        if done >= 20 or not r.ok or (SHARED and "alphatab-testdata/guitarpro7" not in str(f)):
            continue
        s0 = to_score(r.ast)
        for k in (-3, 3):
            t = transpose(r.ast, k)
            if t is None:
                continue
            assert parse(serialize(t)).ok, f
            s1 = to_score(t)
            for a, b in zip(s0.tracks, s1.tracks):
                shift = 0 if a.is_drum else k
                assert sorted((n.time, n.pitch + shift) for n in a.notes) == sorted(
                    (n.time, n.pitch) for n in b.notes
                ), f
        done += 1
    assert done >= 10


# ------------------------------------------------------------------------------ validate
def test_validate_bar_fill_warnings():
    diags = validate(
        "\\ts (4 4)\n0.1.4 0.1.4 0.1.4 0.1.4 | 0.1.4 0.1.4 | 0.1.2 0.1.2 0.1.2 |", "v.atex"
    )
    warnings = [d for d in diags if d.severity == "warning"]
    assert [d.line for d in warnings] == [2, 2]
    assert "bar 2" in warnings[0].message and "1/2" in warnings[0].message
    assert "bar 3" in warnings[1].message and "3/2" in warnings[1].message
    assert not [d for d in diags if d.severity == "error"]


def test_validate_pickup_bar():
    pickup = validate("0.1.4 | 0.1.1 |")
    assert len(pickup) == 1 and "pickup" in pickup[0].message
    assert validate("\\ac 0.1.4 | 0.1.1 |") == []
    both = validate("0.1.4 0.1.4 0.1.5 |")
    assert [d.severity for d in both].count("error") == 1


# ---------------------------------------------------------------------------- pretokenize
def test_pretokenize_pattern_with_hf_tokenizers():
    from tokenizers import Regex, pre_tokenizers

    from musicml.formats.alphatex.pretokenize import ALPHATEX_PRETOKENIZE_PATTERN

    split = pre_tokenizers.Split(Regex(ALPHATEX_PRETOKENIZE_PATTERN), behavior="isolated")
    pieces = [
        p for p, _ in split.pre_tokenize_str('\\track ("A b") {\n}\n12.3.16{h} \\tuning (E4)')
    ]
    assert pieces[:1] == ["\\track"]
    assert '"A b"' in pieces
    i = pieces.index("12")
    assert pieces[i : i + 6] == ["12", ".3", ".16", "{", "h", "}"]
    assert "\\tuning" in pieces
    assert "".join(pieces) == '\\track ("A b") {\n}\n12.3.16{h} \\tuning (E4)'


def test_pretokenize_covers_corpus_text():
    import re

    from musicml.formats.alphatex.pretokenize import ALPHATEX_PRETOKENIZE_PATTERN

    pat = re.compile(ALPHATEX_PRETOKENIZE_PATTERN)
    legend = CORPORA / "alphatex" / "notation-legend-formatted.atex"  # alphaTab's hand-kept file
    for path in [*derived_corpus().atex, *([legend] if legend.is_file() else [])]:
        text = path.read_text(encoding="utf-8")
        assert "".join(pat.findall(text)) == text, path.name


def test_docs_index_lists_the_snippets():
    root = corpus_path("alphatex", "alphatab-docs")
    index = json.loads((root / "index.json").read_text())
    names = {e["file"] for e in index}
    for name in DOCS_FLAGGED:
        assert name in names
    assert Path(root / next(iter(names))).exists()
