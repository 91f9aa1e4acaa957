"""Validity of generated text: three rates per format, one definition each.

* **syntax-valid**: the format's reader reports no error. alphaTex: the project's parser has no
  error diagnostic; ABC: symusic's reader raises nothing and prints no ``error`` (warnings
  allowed); MIDI text: :func:`musicml.formats.midi.text.validate` reports no problem.
* **playable**: the text converts to a ``symusic.Score`` with at least one note.
* **musically valid**: syntax-valid, playable, and every bar fills its time signature, decided
  by one function, :func:`bars_fill`, over the bars each format reads (:class:`Bar`: what a bar
  holds against what its time signature asks, in whole notes): alphaTex bars from the
  project's timeline (each voice of each staff), ABC bars from music21's measures, MIDI-text
  bars from its ``bar`` / ``ts=`` / ``@pos`` tokens (a MIDI bar is a span of time, so it can
  only over-fill: an event placed at or past its end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import symusic

from musicml.formats.native import captured_native_output

FORMATS = ("atex", "abc", "midi")


@dataclass(frozen=True)
class Bar:
    """One bar of one voice: ``content`` it holds and ``expected`` by its time signature
    (whole notes); ``index`` counts bars from 0 within the voice."""

    index: int
    content: Fraction
    expected: Fraction


def bars_fill(bars: Sequence[Bar]) -> bool:
    """True when at least one bar holds music and every bar that holds music holds exactly what
    its time signature asks. Empty bars are skipped (rests fill them). A shorter bar is allowed
    where music splits a bar on purpose: the first bar of a voice (a pickup), its last (the
    pickup's complement), and two neighbouring bars that together make one full bar (a section
    or repeat sign between a bar's two halves). ``bars`` lists each voice's bars in order."""
    if not any(b.content > 0 for b in bars):
        return False
    last = max(b.index for b in bars)

    def halves(i: int, j: int) -> bool:
        return (0 <= j < len(bars) and abs(bars[j].index - bars[i].index) == 1
                and bars[i].content + bars[j].content == bars[i].expected)

    for i, b in enumerate(bars):
        if b.content == 0 or b.content == b.expected:
            continue
        if b.content < b.expected and (b.index in (0, last) or halves(i, i - 1) or halves(i, i + 1)):
            continue
        return False
    return True


@dataclass
class Validity:
    """What :func:`check` found for one text."""

    syntax_valid: bool
    playable: bool
    musically_valid: bool
    problems: list[str] = field(default_factory=list)
    score: symusic.Score | None = None


def check(fmt: str, text: str, source: str = "<sample>") -> Validity:
    """Syntax validity, playability and musical validity of ``text`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    with captured_native_output():
        syntax, problems, score = _read(fmt, text, source)
        playable = score is not None and score.note_num() > 0
        musical = False
        if syntax and playable:
            try:
                bars = _bars(fmt, text, source)
            except Exception as err:  # a reader that fails on the bar structure: not valid
                bars, problems = [], [*problems, f"{source}: cannot read bars: {err}"]
            musical = bars_fill(bars)
            if not musical:
                problems = [*problems, f"{source}: a bar does not fill its time signature"]
    return Validity(syntax, playable, musical, problems[:10], score)


def _read(fmt: str, text: str, source: str) -> tuple[bool, list[str], symusic.Score | None]:
    if fmt == "atex":
        from musicml.formats import alphatex

        result = alphatex.parse(text, source)
        if not result.ok:
            return False, [str(d) for d in result.errors], None
        try:
            return True, [], alphatex.to_score(result.ast)
        except Exception as err:  # parses but cannot be played
            return True, [f"{source}: cannot convert to notes: {err}"], None
    if fmt == "abc":
        from musicml.formats.abc import Tune, parse_tune
        from musicml.formats.errors import ScoreError

        tune = Tune(index=0, line=1, text=text)
        try:
            parse_tune(tune, source)
        except ScoreError as err:
            return False, [str(err)], None
        return not any(": error:" in m for m in tune.messages), list(tune.messages), tune.score
    from musicml.formats.midi import text as miditext

    return not (problems := miditext.validate(text)), problems, miditext.decode(text)


def _bars(fmt: str, text: str, source: str) -> list[Bar]:
    if fmt == "atex":
        return alphatex_bars(text, source)
    if fmt == "abc":
        return abc_bars(text)
    return midi_bars(text)


def alphatex_bars(text: str, source: str = "<string>") -> list[Bar]:
    """Bars of every voice of every staff (the project's timeline), in one list; the indices
    restart per voice, so :func:`bars_fill`'s first/last rule applies per piece."""
    from musicml.formats import alphatex
    from musicml.formats.alphatex.notes import timeline

    return [Bar(b.index, Fraction(0) if b.empty else b.content, b.expected)
            for b in timeline(alphatex.parse(text, source).ast).bars]


def abc_bars(text: str) -> list[Bar]:
    """Measures of every part as music21 reads the tune (``barDuration`` from ``M:``)."""
    from music21 import converter, stream

    parsed = converter.parse(text, format="abc")
    out: list[Bar] = []
    for part in parsed.parts if isinstance(parsed, stream.Score) else [parsed]:
        for i, m in enumerate(part.getElementsByClass(stream.Measure)):
            out.append(Bar(i, Fraction(m.duration.quarterLength).limit_denominator(960) / 4,
                           Fraction(m.barDuration.quarterLength).limit_denominator(960) / 4))
    return out


def midi_bars(text: str) -> list[Bar]:
    """Bars of a MIDI text (``bar`` tokens; length ``num * 4 * grid / den`` grid steps from the
    latest ``ts=``). Content is the bar's length, or more when an event sits at or past its end."""
    from musicml.formats.midi.text import read_grid

    grid = read_grid(text)
    num, den = 4, 4
    bars: list[Bar] = []
    length, reach, has_notes = 0, 0, False

    def close() -> None:
        if bars or length:
            expected = Fraction(length, 4 * grid)
            bars.append(Bar(len(bars), max(expected, Fraction(reach, 4 * grid)) if has_notes else Fraction(0),
                            expected))

    started = False
    for tok in text.split():
        if tok == "bar":
            if started:
                close()
            started, reach, has_notes = True, 0, False
            length = num * 4 * grid // den
        elif not started:
            continue
        elif tok.startswith("ts=") and "/" in tok:
            n, d = tok[3:].split("/", 1)
            if n.isdigit() and d.isdigit() and int(n) > 0 and int(d) > 0:
                num, den = int(n), int(d)
                length = num * 4 * grid // den
        elif tok.startswith("@") and tok[1:].isdigit():
            reach = max(reach, int(tok[1:]) + 1)
        elif ":" in tok:
            has_notes = True
    if started:
        close()
    return bars


class _Checked(Protocol):
    format: str
    syntax_ok: bool
    musical_ok: bool | None
    notes: int


def summarize(samples: Sequence[_Checked]) -> dict[str, float]:
    """Rates per format over the samples: ``{fmt}_syntax_valid_rate``, ``{fmt}_playable_rate``,
    ``{fmt}_musical_valid_rate`` (the definitions in this module's docstring). Samples of event
    tokens have no bars to check (``musical_ok`` None): their group gets no musical rate."""
    out: dict[str, float] = {}
    for fmt in sorted({s.format for s in samples}):
        group = [s for s in samples if s.format == fmt]
        out[f"{fmt}_syntax_valid_rate"] = sum(bool(s.syntax_ok) for s in group) / len(group)
        out[f"{fmt}_playable_rate"] = sum(s.notes > 0 for s in group) / len(group)
        if any(s.musical_ok is not None for s in group):
            out[f"{fmt}_musical_valid_rate"] = sum(bool(s.musical_ok) for s in group) / len(group)
    return out
