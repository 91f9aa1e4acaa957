"""ABC behind the :class:`~musicml.formats.base.Format` interface: tunes read with symusic,
transposed as text (:func:`musicml.formats.abc.transpose_abc`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import symusic

from musicml.formats.abc.reader import Tune, parse_tune, read_abc, transpose_tune
from musicml.formats.abc.transpose import transpose_abc
from musicml.formats.base import (
    ERROR,
    WARNING,
    Diagnostic,
    Format,
    Piece,
    Reading,
    ScoreCheck,
    require_text,
)
from musicml.formats.errors import ScoreError
from musicml.formats.native import captured_native_output

# parse_tune's messages: "source:line:col: kind: text" or "source:line: note: text"
_MESSAGE = re.compile(r"^(?P<line>\d+)(?::(?P<col>\d+))?: (?P<kind>\w+): (?P<text>.*)$", re.DOTALL)


class AbcFormat(Format):
    name = "abc"
    extensions = (".abc",)
    text_suffix = ".abc"

    def read(self, data: bytes, source: str, *, grid: int | None = None, max_pieces: int | None = None,
             check: ScoreCheck | None = None) -> Reading:
        text, encoding = require_text(data, source)
        tunes, problems = read_abc(text, source, max_tunes=max_pieces)
        pieces = [Piece(t.index, t.line, t.title, t.text, t.score) for t in tunes]
        for p in pieces if check else ():
            check(p.score, f"{source}:{p.line}")
        return Reading(pieces, problems + [m for t in tunes for m in t.messages], encoding)

    def _tune(self, text: str, source: str) -> Tune:
        return parse_tune(Tune(index=0, line=1, text=text), source)

    def to_score(self, text: str, source: str = "<string>") -> symusic.Score:
        return self._tune(text, source).score

    def transpose_all(self, text: str, shifts: Sequence[int], *, frets: int = 24) -> dict[int, str | None]:
        """Re-spelled in the shifted key by the text transposer; the rare tune it declines is
        re-written from symusic's shifted notes (``midi2abc``, slower)."""
        out = {k: transpose_abc(text, k) for k in shifts}
        missing = [k for k, moved in out.items() if moved is None]
        if missing:
            with captured_native_output():
                score = symusic.Score.from_abc(text)
                out.update({k: transpose_tune(text, score, k) for k in missing})
        return out

    def validate(self, text: str, source: str = "<string>") -> list[Diagnostic]:
        """symusic's messages (``error``, ``warning``, ``note``); a tune that cannot be read or
        holds no notes is an error at its first line."""
        tune = Tune(index=0, line=1, text=text)
        try:
            parse_tune(tune, source)
        except ScoreError as err:
            failed = Diagnostic(ERROR, err.line or 1, err.col or 1, err.message, source)
        else:
            failed = None
        out = [_diagnostic(m, source) for m in tune.messages]
        return out + ([failed] if failed else [])


def _diagnostic(message: str, source: str) -> Diagnostic:
    rest = message[len(source) + 1:] if message.startswith(f"{source}:") else message
    m = _MESSAGE.match(rest)
    if not m:
        return Diagnostic(WARNING, 1, 1, rest, source)
    kind = m["kind"].lower()
    return Diagnostic(ERROR if kind == ERROR else kind, int(m["line"]), int(m["col"] or 1), m["text"], source)
