"""alphaTex behind the :class:`~musicml.formats.base.Format` interface (the project's own parser)."""

from __future__ import annotations

from collections.abc import Sequence

import symusic

from musicml.formats import alphatex
from musicml.formats.base import Diagnostic, Format, Piece, Reading, ScoreCheck, require_text
from musicml.formats.errors import ScoreError


def title(ast: alphatex.Score) -> str:
    """The ``\\title`` of an alphaTex score, or ""."""
    meta = ast.meta("title")
    if meta and meta.values and isinstance(meta.values[0], str):
        return meta.values[0]
    return ""


def _malformed(result: alphatex.ParseResult, source: str) -> ScoreError:
    errors = result.errors
    first = "; ".join(str(d) for d in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return ScoreError(source, f"malformed alphaTex, {len(errors)} error(s): {first}{more}")


class AlphaTexFormat(Format):
    name = "atex"
    extensions = (".atex", ".alphatex")
    text_suffix = ".atex"

    def read(self, data: bytes, source: str, *, grid: int | None = None, max_pieces: int | None = None,
             check: ScoreCheck | None = None) -> Reading:
        """One piece: the canonical (re-serialized) text; warnings become problems."""
        text, encoding = require_text(data, source)
        result = alphatex.parse(text, source)
        if not result.ok:
            raise _malformed(result, source)
        score = alphatex.to_score(result.ast)
        if check:
            check(score, f"{source}:1")
        piece = Piece(0, 1, title(result.ast), alphatex.serialize(result.ast), score)
        return Reading([piece], [str(d) for d in result.warnings], encoding)

    def to_score(self, text: str, source: str = "<string>") -> symusic.Score:
        result = alphatex.parse(text, source)
        if not result.ok:
            raise _malformed(result, source)
        return alphatex.to_score(result.ast)

    def transpose_all(self, text: str, shifts: Sequence[int], *, frets: int = 24) -> dict[int, str | None]:
        """Re-fingered on the fretboard; None for a shift that is unplayable (or a text with errors)."""
        if not shifts:
            return {}
        result = alphatex.parse(text)
        if not result.ok:
            return dict.fromkeys(shifts)
        out: dict[int, str | None] = {}
        for k in shifts:
            moved = alphatex.transpose(result.ast, k, frets=frets)
            out[k] = None if moved is None else alphatex.serialize(moved)
        return out

    def validate(self, text: str, source: str = "<string>") -> list[Diagnostic]:
        return alphatex.validate(text, source)
