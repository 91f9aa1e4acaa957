"""Score formats: detection, decoding and one :class:`~musicml.formats.base.Format` per format.

``musicml.formats.alphatex`` is the project's own alphaTex implementation; MIDI and ABC are
read with symusic (``midi``, ``abc``); ``midi.text`` is the text serialization of MIDI used for
language modelling. :func:`get_format` returns a format's implementation of the common
interface (read bytes, text to notes, transpose, validate).
"""

from __future__ import annotations

from pathlib import Path

from musicml.formats.abc.format import AbcFormat
from musicml.formats.alphatex.format import AlphaTexFormat
from musicml.formats.base import Diagnostic, Format, Piece, Reading
from musicml.formats.errors import ScoreError
from musicml.formats.midi.format import MidiFormat

REGISTRY: dict[str, Format] = {f.name: f for f in (AlphaTexFormat(), AbcFormat(), MidiFormat())}
FORMATS: tuple[str, ...] = tuple(REGISTRY)  # ("atex", "abc", "midi")
EXTENSIONS: dict[str, str] = {ext: f.name for f in REGISTRY.values() for ext in f.extensions}


def get_format(name: str) -> Format:
    """The implementation of format ``name``; raises ValueError naming the known formats."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown format {name!r} (expected one of {', '.join(FORMATS)})") from None


def detect_format(path: str | Path) -> str | None:
    """The format named by a file's extension (``atex``, ``midi``, ``abc``) or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


__all__ = ["EXTENSIONS", "FORMATS", "REGISTRY", "Diagnostic", "Format", "Piece", "Reading", "ScoreError",
           "detect_format", "get_format"]
