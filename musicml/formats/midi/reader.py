"""MIDI files, read with symusic."""

from __future__ import annotations

import symusic

from musicml.formats.errors import ScoreError


def load_midi(data: bytes, source: str) -> symusic.Score:
    """Parse Standard MIDI File bytes; raises :class:`ScoreError` naming the file and problem."""
    if data[:4] != b"MThd":
        raise ScoreError(source, f"not a Standard MIDI File: header is {data[:4]!r}, expected b'MThd'")
    if len(data) < 14:
        raise ScoreError(source, f"truncated MIDI header ({len(data)} bytes, a header needs 14)")
    try:
        score = symusic.Score.from_midi(data)
    except MemoryError:
        raise
    except Exception as err:  # symusic raises RuntimeError with its own message
        if "bad_alloc" in str(err):  # C++'s out of memory, as symusic passes it on
            raise MemoryError(f"{source}: symusic: {err}") from None
        raise ScoreError(source, f"corrupt MIDI: {err}") from None
    if score.note_num() == 0:
        raise ScoreError(source, "MIDI file holds no notes")
    return score
