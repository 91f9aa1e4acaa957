"""One interface for every score format: read bytes, make notes of text, transpose, validate.

Each format package (:mod:`musicml.formats.midi`, :mod:`musicml.formats.abc`,
:mod:`musicml.formats.alphatex`) has one :class:`Format` subclass that delegates to that
package's functions; :func:`musicml.formats.get_format` returns it by name. Callers that used to
switch on format strings (ingestion, augmentation, sample checks) go through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import symusic

from musicml.formats.diagnostics import ERROR, WARNING, Diagnostic
from musicml.formats.errors import ScoreError

__all__ = ["ERROR", "WARNING", "Diagnostic", "Format", "Piece", "Reading", "ScoreCheck"]

# Called with each score a reader makes and where it comes from (``source`` or ``source:line``),
# before any text is made of it; raises ScoreError to refuse it (ingestion's size limits).
ScoreCheck = Callable[[symusic.Score, str], None]


@dataclass
class Piece:
    """One score read from a file: position, title, canonical text and notes."""

    index: int  # 0-based position in its file (ABC files hold many tunes)
    line: int  # 1-based first line in its file (0 where lines mean nothing: MIDI)
    title: str
    text: str  # canonical text: what dedup compares and models train on
    score: symusic.Score


@dataclass
class Reading:
    """What reading one file gave: its pieces and the problems that did not stop it."""

    pieces: list[Piece]
    problems: list[str] = field(default_factory=list)
    encoding: str | None = None  # text formats: how the bytes were decoded


class Format(ABC):
    """A score format. Subclasses set the class attributes and implement the four operations."""

    name: ClassVar[str]  # "atex", "abc", "midi": the format token and the ``format`` column
    extensions: ClassVar[tuple[str, ...]]  # lower-case file suffixes, with the dot
    text_suffix: ClassVar[str]  # suffix of a file holding the canonical text

    @abstractmethod
    def read(self, data: bytes, source: str, *, grid: int | None = None, max_pieces: int | None = None,
             check: ScoreCheck | None = None) -> Reading:
        """Pieces of a file's bytes; raises :class:`ScoreError` (naming ``source``, and line and
        column for text) when nothing is usable. ``grid`` is MIDI text's steps per quarter note
        (None: :func:`musicml.formats.midi.text.encode`'s default); ``max_pieces`` caps the tunes
        of an ABC file; ``check`` sees every score first. Formats ignore options that do not
        apply to them."""

    @abstractmethod
    def to_score(self, text: str, source: str = "<string>") -> symusic.Score:
        """Notes of one piece's canonical text; raises :class:`ScoreError` when unreadable."""

    @abstractmethod
    def transpose_all(self, text: str, shifts: Sequence[int], *, frets: int = 24) -> dict[int, str | None]:
        """Text of one piece moved by each shift (reading it once); None where a shift cannot
        be written (alphaTex: unplayable within ``frets``)."""

    @abstractmethod
    def validate(self, text: str, source: str = "<string>") -> list[Diagnostic]:
        """Every error and warning of a text, by position (``source:line:col: severity: ...``)."""

    def transpose(self, text: str, semitones: int, *, frets: int = 24) -> str | None:
        """``text`` moved by ``semitones``, or None where it cannot be."""
        return self.transpose_all(text, [semitones], frets=frets)[semitones]

    def errors(self, text: str, source: str = "<string>") -> list[Diagnostic]:
        """The error diagnostics of :meth:`validate` (empty: the text is syntax-valid)."""
        return [d for d in self.validate(text, source) if d.is_error]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {', '.join(self.extensions)}>"


def require_text(data: bytes, source: str, *, allow_legacy: bool = True) -> tuple[str, str]:
    """``(text, encoding)`` of a text file's bytes; raises :class:`ScoreError` for an empty file,
    bytes that are not text (naming line and column), or only whitespace."""
    from musicml.formats.text import decode_text

    if not data:
        raise ScoreError(source, "empty file (0 bytes)")
    text, encoding = decode_text(data, source, allow_legacy=allow_legacy)
    if not text.strip():
        raise ScoreError(source, "file holds only whitespace")
    return text, encoding
