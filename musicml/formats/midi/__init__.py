"""MIDI: files read with symusic; ``text`` is the MIDI text serialization."""

from __future__ import annotations

from musicml.formats.midi.reader import (  # noqa: F401
    load_midi,
)
