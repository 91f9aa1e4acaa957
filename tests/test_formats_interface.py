"""One Format interface per format: registry, read, to_score, transpose, validate, bad input."""

from __future__ import annotations

import pytest
import symusic

from musicml.curate.augment import transpose_text
from musicml.formats import (
    EXTENSIONS,
    FORMATS,
    REGISTRY,
    Format,
    ScoreError,
    detect_format,
    get_format,
)
from musicml.formats.abc import split_tunes
from musicml.formats.midi import text as miditext
from musicml.ingest.files import parse_bytes


def _pitches(score: symusic.Score, drums: bool | None = None) -> list[int]:
    return sorted(n.pitch for t in score.tracks if drums is None or t.is_drum == drums for n in t.notes)


def _real_files(derived) -> dict[str, bytes]:
    """One real file per format: a multi-track MIDI with drums, a small ABC file, an alphaTex tab."""
    return {"midi": derived.band.read_bytes(), "abc": derived.abc_files[0].read_bytes(),
            "atex": derived.atex[0].read_bytes()}


def test_registry_is_the_one_list_of_formats() -> None:
    assert FORMATS == ("atex", "abc", "midi")
    assert set(REGISTRY) == set(FORMATS)
    for name, fmt in REGISTRY.items():
        assert isinstance(fmt, Format) and fmt.name == name and get_format(name) is fmt
        assert all(EXTENSIONS[ext] == name and detect_format(f"x{ext.upper()}") == name for ext in fmt.extensions)
    assert {get_format(f).text_suffix for f in FORMATS} == {".atex", ".abc", ".miditext"}


@pytest.mark.parametrize("bad", ["xml", "", "ATEX", None])
def test_unknown_format_names_the_known_ones(bad) -> None:
    with pytest.raises(ValueError, match=r"unknown format .* \(expected one of atex, abc, midi\)"):
        get_format(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_matches_ingestion_and_to_score(derived, fmt: str) -> None:
    data = _real_files(derived)[fmt]
    reading = get_format(fmt).read(data, f"song.{fmt}")
    parsed = parse_bytes(data, fmt, f"song.{fmt}")
    assert [(p.index, p.line, p.title, p.text) for p in reading.pieces] == \
        [(p.index, p.line, p.title, p.text) for p in parsed.pieces]
    assert reading.pieces and all(p.score.note_num() > 0 for p in reading.pieces)
    for piece in reading.pieces[:5]:  # the canonical text reads back to the same pitches
        assert _pitches(get_format(fmt).to_score(piece.text)) == _pitches(piece.score)


def test_read_midi_grid_option(derived) -> None:
    fine = get_format("midi").read(derived.midi[0].read_bytes(), "a.mid", grid=12).pieces[0].text
    assert miditext.read_grid(fine) == 12
    assert miditext.read_grid(get_format("midi").read(derived.midi[0].read_bytes(), "a.mid").pieces[0].text) == 4


def test_read_abc_max_pieces(derived) -> None:
    with pytest.raises(ScoreError, match="too many tunes"):
        get_format("abc").read(derived.big_abc.read_bytes(), "big.abc", max_pieces=3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_hook_sees_every_score_and_can_refuse(derived, fmt: str) -> None:
    seen: list[str] = []
    reading = get_format(fmt).read(_real_files(derived)[fmt], f"f.{fmt}", check=lambda s, where: seen.append(where))
    assert len(seen) == len(reading.pieces) and all(w.startswith(f"f.{fmt}") for w in seen)

    def refuse(score: symusic.Score, where: str) -> None:
        raise ScoreError(where, "refused")

    with pytest.raises(ScoreError, match="refused"):
        get_format(fmt).read(_real_files(derived)[fmt], f"f.{fmt}", check=refuse)


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("atex", b"", r"^x\.atex: empty file"),
        ("abc", b"", r"^x\.abc: empty file"),
        ("midi", b"", r"^x\.midi: empty file"),
        ("atex", b"  \n\t", r"^x\.atex: file holds only whitespace"),
        ("abc", b"X:1\nK:C\n\x01CDE|\n", r"^x\.abc:3:1: binary data"),
        ("atex", b'\\title "a"\n.\n3.3.4 | 0.1.4 {zz\n', r"^x\.atex: malformed alphaTex, \d+ error\(s\): x\.atex:3:"),
        ("abc", b"no tune header here\n", r"^x\.abc: no readable tune"),
        ("midi", b"RIFF\x00\x00", r"^x\.midi: not a Standard MIDI File"),
        ("midi", b"MThd\x00\x00\x00\x06\x00", r"^x\.midi: truncated MIDI header"),
    ],
)
def test_bad_bytes_raise_score_error_naming_the_place(fmt: str, data: bytes, message: str) -> None:
    with pytest.raises(ScoreError, match=message):
        get_format(fmt).read(data, f"x.{fmt}")


def test_to_score_of_bad_text_raises(derived) -> None:
    with pytest.raises(ScoreError, match=r"^s\.atex: malformed alphaTex"):
        get_format("atex").to_score("3.3.4 | 0.1.4 {zz", "s.atex")
    with pytest.raises(ScoreError, match=r"^s\.abc:1: tune 1 .* holds no notes"):
        get_format("abc").to_score("X:1\nT:empty\nK:C\n", "s.abc")
    # MIDI text decodes tolerantly: junk is skipped, validate lists it
    assert get_format("midi").to_score("MIDI grid=4\njunk").note_num() == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_transpose_moves_pitched_notes(derived, fmt: str) -> None:
    piece = get_format(fmt).read(_real_files(derived)[fmt], f"t.{fmt}").pieces[0]
    impl = get_format(fmt)
    up = impl.transpose(piece.text, 2)
    assert up is not None and up != piece.text
    moved = impl.to_score(up)
    assert _pitches(moved, drums=False) == [p + 2 for p in _pitches(piece.score, drums=False)]
    assert _pitches(moved, drums=True) == _pitches(piece.score, drums=True)
    assert impl.transpose_all(piece.text, [2, -1]) == {2: up, -1: impl.transpose(piece.text, -1)}
    assert transpose_text(fmt, piece.text, 2) == up  # augmentation goes through the same transposer
    assert impl.transpose_all(piece.text, []) == {}


def test_unplayable_alphatex_shift_is_none(derived) -> None:
    text = get_format("atex").read(derived.atex[0].read_bytes(), "t.atex").pieces[0].text
    assert get_format("atex").transpose(text, -40) is None
    assert get_format("atex").transpose("3.3.4 | {zz", 1) is None  # a text with errors


def test_validate_valid_texts_have_no_errors(derived) -> None:
    for fmt, data in _real_files(derived).items():
        piece = get_format(fmt).read(data, f"v.{fmt}").pieces[0]
        assert get_format(fmt).errors(piece.text, f"v.{fmt}") == []


def test_validate_reports_errors_by_position() -> None:
    [atex] = get_format("atex").errors('\\title "a"\n.\n3.3.4 | 0.1.4 {zz\n', "g.atex")[:1]
    assert (atex.line, atex.source, atex.severity) == (3, "g.atex", "error")
    abc = get_format("abc").validate("X:1\nK:C\nCDEF|zzz[[[|\n", "g.abc")
    assert [(d.severity, d.line, d.col) for d in abc if d.is_error] == [("error", 3, 11)]
    assert str(abc[-1]).startswith("g.abc:3:11: error: ")
    midi = get_format("midi").validate("MIDI grid=4\nbar ts=4/4\nt0 @0 C4:4 Q9:2\n", "g.miditext")
    assert midi and all(d.is_error and d.source == "g.miditext" for d in midi)
    assert [str(d) for d in midi] == [f"g.miditext:{p.split(':', 2)[0]}:{p.split(':', 2)[1]}: error:"
                                      f"{p.split(':', 2)[2]}" for p in miditext.validate(
                                          "MIDI grid=4\nbar ts=4/4\nt0 @0 C4:4 Q9:2\n")]


def test_abc_tune_without_notes_is_an_error_diagnostic() -> None:
    [d] = [d for d in get_format("abc").validate("X:1\nT:empty\nK:C\n", "e.abc") if d.is_error]
    assert d.line == 1 and "holds no notes" in d.message


def test_multi_tune_file_pieces_are_its_tunes(derived) -> None:
    text = derived.big_abc.read_text(encoding="utf-8")
    tunes = split_tunes(text)[:12]
    head = "".join(t.text.rstrip("\n") + "\n\n" for t in tunes).encode("utf-8")
    reading = get_format("abc").read(head, "big.abc")
    assert [p.index for p in reading.pieces] == list(range(len(reading.pieces))) and len(reading.pieces) >= 10
    assert [p.line for p in reading.pieces] == sorted(p.line for p in reading.pieces)
    assert reading.encoding == "utf-8"
