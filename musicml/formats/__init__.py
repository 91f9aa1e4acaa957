"""Score formats: detection, decoding and the readers for MIDI, ABC and alphaTex.

``musicml.formats.alphatex`` is the project's own alphaTex implementation; MIDI and ABC are
read with symusic (``midi``, ``abc``); ``miditext`` is the text serialization of MIDI used for
language modelling.
"""

from __future__ import annotations

from pathlib import Path

from musicml.formats.errors import ScoreError

EXTENSIONS: dict[str, str] = {
    ".atex": "atex",
    ".alphatex": "atex",
    ".mid": "midi",
    ".midi": "midi",
    ".abc": "abc",
}
FORMATS: tuple[str, ...] = ("atex", "abc", "midi")


def detect_format(path: str | Path) -> str | None:
    """The format named by a file's extension (``atex``, ``midi``, ``abc``) or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


__all__ = ["EXTENSIONS", "FORMATS", "ScoreError", "detect_format"]
