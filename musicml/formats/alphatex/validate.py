"""Validation: syntax and semantic errors plus musical warnings.

A bar whose voice holds more or less than its time signature asks for is a WARNING (alphaTab
plays it anyway: an underfull bar ends in silence, an overfull one runs into the next). Empty
bars (no beats: alphaTab fills them with a rest) and bars marked ``\\ac`` (anacrusis) are not
flagged; an underfull first bar is reported as a probable pickup that should carry ``\\ac``.
"""

from __future__ import annotations

from fractions import Fraction

from musicml.formats.alphatex.diagnostics import WARNING, Diagnostic
from musicml.formats.alphatex.notes import timeline
from musicml.formats.alphatex.parser import parse


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def bar_warnings(ast, source: str = "<string>") -> list[Diagnostic]:
    out: list[Diagnostic] = []
    tl = timeline(ast)
    for b in tl.bars:
        if b.empty or b.anacrusis or b.content == b.expected:
            continue
        where = f"bar {b.index + 1} (track {b.track + 1}, staff {b.staff + 1}, voice {b.voice + 1})"
        have = f"holds {_frac(b.content)} of a whole note but its time signature asks for {_frac(b.expected)}"
        if b.index == 0 and b.content < b.expected:
            msg = f"{where} {have}: a pickup (anacrusis) bar? mark it with \\ac"
        else:
            msg = f"{where} {have}"
        line, col = b.pos if b.pos != (0, 0) else (1, 1)
        out.append(Diagnostic(WARNING, line, col, msg, source))
    return out


def validate(text: str, source: str = "<string>") -> list[Diagnostic]:
    """Every error (syntax, semantics) and warning (musical validity) of a text, by position."""
    result = parse(text, source)
    diags = list(result.diagnostics)
    diags.extend(bar_warnings(result.ast, source))
    diags.sort(key=lambda d: (d.line, d.col))
    return diags
