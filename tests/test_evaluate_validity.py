"""Validity rates: one definition per format, one bar-fill check for alphaTex, ABC and MIDI."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest
import symusic
from conftest import derived_corpus, shared_files

from musicml.evaluate.validity import (
    Bar,
    abc_bars,
    alphatex_bars,
    bars_fill,
    check,
    midi_bars,
    summarize,
)
from musicml.formats.abc import split_tunes
from musicml.formats.midi import text as miditext
from musicml.ingest.corpus import music21_abc_files

W = Fraction(1)  # a 4/4 bar, in whole notes


def test_bars_fill_rules() -> None:
    full = [Bar(i, W, W) for i in range(3)]
    assert bars_fill(full)
    assert not bars_fill([Bar(0, Fraction(0), W)])  # nothing sounding
    assert not bars_fill([])
    assert bars_fill([Bar(0, Fraction(1, 4), W), *full[1:], Bar(3, Fraction(3, 4), W)])  # pickup + last
    assert not bars_fill([Bar(0, W, W), Bar(1, Fraction(1, 2), W), Bar(2, W, W)])  # short in the middle
    assert not bars_fill([Bar(0, W, W), Bar(1, Fraction(5, 4), W), Bar(2, W, W)])  # over-full
    # a bar split in two halves by a repeat sign
    assert bars_fill([Bar(0, W, W), Bar(1, Fraction(3, 4), W), Bar(2, Fraction(1, 4), W), Bar(3, W, W)])
    assert bars_fill([Bar(0, W, W), Bar(1, Fraction(0), W), Bar(2, W, W)])  # empty bars are rests


ABC_FULL = "X:1\nT:full\nM:3/4\nL:1/8\nK:G\nD2|G2 B2 d2|e2 d2 B2|c4 A2|G4|]\n"
ABC_SHORT = "X:1\nT:short\nM:3/4\nL:1/8\nK:G\nG2 B2 d2|e2 d2|c4 A2|G6|]\n"


def test_abc_definitions() -> None:
    ok = check("abc", ABC_FULL)
    assert ok.syntax_valid and ok.playable and ok.musically_valid, ok.problems
    bars = abc_bars(ABC_FULL)
    assert [b.content for b in bars] == [Fraction(1, 4)] + [Fraction(3, 4)] * 3 + [Fraction(1, 2)]
    short = check("abc", ABC_SHORT)
    assert short.syntax_valid and short.playable and not short.musically_valid
    assert "does not fill its time signature" in short.problems[-1]
    empty = check("abc", "X:1\nT:none\nK:C\n")
    assert not empty.playable and not empty.musically_valid


def test_alphatex_definitions() -> None:
    header = '\\title "t"\n\\ts 4 4\n.\n'
    ok = check("atex", header + "3.3.4 3.3.4 3.3.4 3.3.4 | 5.2.2 5.2.2 |")
    assert ok.syntax_valid and ok.playable and ok.musically_valid, ok.problems
    over = check("atex", header + "3.3.4 3.3.4 | 3.3.4 3.3.4 3.3.4 3.3.4 3.3.4 | 5.2.1 |")
    assert over.syntax_valid and over.playable and not over.musically_valid
    bars = alphatex_bars(header + "3.3.4 3.3.4 | 3.3.4 3.3.4 3.3.4 3.3.4 3.3.4 | 5.2.1 |")
    assert [b.content for b in bars] == [Fraction(1, 2), Fraction(5, 4), W]
    broken = check("atex", header + "3.3.4 (0.1 2.2.4 |")
    assert not broken.syntax_valid and not broken.musically_valid


def test_midi_definitions() -> None:
    text = "MIDI grid=4\ntrack t0 program=0\nbar ts=2/4\nt0 @0 v64 C4:4 @4 E4:4\nbar\nt0 @0 G4:8\n"
    ok = check("midi", text)
    assert ok.syntax_valid and ok.playable and ok.musically_valid, ok.problems
    assert [b.content for b in midi_bars(text)] == [Fraction(1, 2)] * 2
    late = text.replace("@4 E4:4", "@9 E4:4")  # an event past the end of a 2/4 bar (8 steps)
    assert midi_bars(late)[0].content == Fraction(10, 16)
    v = check("midi", late)
    assert not v.syntax_valid and not v.musically_valid
    silent = check("midi", "MIDI grid=4\nbar ts=4/4\nbar\n")
    assert silent.syntax_valid and not silent.playable and not silent.musically_valid


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        check("musicxml", "<score/>")


def test_real_music_is_mostly_valid() -> None:
    """Real scores: the definitions must not call real music invalid wholesale."""
    tunes = [t.text for f in sorted(music21_abc_files())[:12] for t in split_tunes(f.read_text(errors="replace"))][:20]
    abc = [check("abc", t) for t in tunes]
    assert sum(v.syntax_valid for v in abc) >= 18 and sum(v.musically_valid for v in abc) >= 14
    d = derived_corpus()  # music21 tunes as MIDI, and POP909 songs when the shared corpora are there
    files = [*d.multitrack, d.band, *shared_files("midi", "pop909", names=["001.mid", "002.mid", "003.mid"])]
    midi = [check("midi", miditext.encode(symusic.Score(str(p)))) for p in files]
    assert all(v.syntax_valid and v.playable and v.musically_valid for v in midi)


def test_summarize_rates_per_format() -> None:
    s = [SimpleNamespace(format="abc", syntax_ok=True, musical_ok=True, notes=5),
         SimpleNamespace(format="abc", syntax_ok=True, musical_ok=False, notes=0),
         SimpleNamespace(format="midi", syntax_ok=False, musical_ok=False, notes=0),
         SimpleNamespace(format="remi", syntax_ok=True, musical_ok=None, notes=3)]  # event tokens: no bars
    assert summarize(s) == {"abc_syntax_valid_rate": 1.0, "abc_playable_rate": 0.5, "abc_musical_valid_rate": 0.5,
                            "midi_syntax_valid_rate": 0.0, "midi_playable_rate": 0.0, "midi_musical_valid_rate": 0.0,
                            "remi_syntax_valid_rate": 1.0, "remi_playable_rate": 1.0}
