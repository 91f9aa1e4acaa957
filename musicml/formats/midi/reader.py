"""MIDI files, read with symusic."""

from __future__ import annotations

import symusic

from musicml.formats.errors import ScoreError


def smf_bytes(data: bytes, source: str) -> bytes:
    """The Standard MIDI File in ``data``: itself, or the ``data`` chunk of a RIFF MIDI file
    (``RMID``, Windows' ``.rmi``, sometimes named ``.mid``)."""
    if data[:4] != b"RIFF":
        return data
    if data[8:12] != b"RMID":
        raise ScoreError(source, f"not a Standard MIDI File: a RIFF file of type {data[8:12]!r}, not RIFF MIDI "
                                 "(b'RMID')")
    at = 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4:at + 8], "little")
        if data[at:at + 4] == b"data":
            return data[at + 8:at + 8 + size]
        at += 8 + size + (size & 1)  # chunks are padded to an even length
    raise ScoreError(source, "RIFF MIDI file without a 'data' chunk")


def load_midi(data: bytes, source: str) -> symusic.Score:
    """Parse Standard MIDI File bytes (or RIFF MIDI: :func:`smf_bytes`); raises
    :class:`ScoreError` naming the file and problem, also for what symusic would mis-handle or
    misname: a header that says 0 ticks per quarter note, or SMPTE time."""
    data = smf_bytes(data, source)
    if data[:4] != b"MThd":
        raise ScoreError(source, f"not a Standard MIDI File: header is {data[:4]!r}, expected b'MThd'")
    if len(data) < 14:
        raise ScoreError(source, f"truncated MIDI header ({len(data)} bytes, a header needs 14)")
    division = int.from_bytes(data[12:14], "big")
    if division == 0:
        raise ScoreError(source, "MIDI header says 0 ticks per quarter note (division 0)")
    if division & 0x8000:
        raise ScoreError(source, f"MIDI header uses SMPTE time ({256 - data[12]} frames per second, {data[13]} "
                                 "ticks per frame): not supported, only ticks per quarter note")
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
