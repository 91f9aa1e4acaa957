"""Every note of a ``symusic.Score`` as flat numpy columns, made once and shared.

The MIDI text encoder (:func:`musicml.formats.midi.text.encode`), the note table
(:func:`musicml.ingest.note_table.note_arrays`) and the piece statistics
(:func:`musicml.ingest.note_table.piece_stats`) all start from the score's notes; converting
them once (``Track.notes.numpy()`` of each track) and passing the columns along saves a
conversion per consumer on the ingestion path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

__all__ = ["NoteColumns", "note_columns"]


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class NoteColumns:
    """The notes of a tick-time score, track after track, each track in its stored order.

    Only valid for the score they were made of, as it was then: a score changed afterwards
    needs new columns.
    """

    tpq: int  # ticks per quarter note
    time: np.ndarray  # int32 ticks (symusic's own types: no conversion)
    duration: np.ndarray  # int32 ticks
    pitch: np.ndarray  # int8
    velocity: np.ndarray  # int8
    track: np.ndarray  # int32: index of the note's track in ``score.tracks``
    counts: np.ndarray  # int64: notes of each track of ``score.tracks``
    programs: np.ndarray  # int16: each track's program as stored (0..255)
    drums: np.ndarray  # bool: each track's is_drum
    names: tuple[str, ...] = ()  # each track's name

    @property
    def n_tracks(self) -> int:
        return len(self.counts)


def note_columns(score: symusic.Score) -> NoteColumns:
    """The columns of ``score`` (converted to ticks first when it is in another time unit)."""
    if score.ttype != symusic.TimeUnit.tick:
        score = score.to("tick")
    arrays, names, programs, drums = [], [], [], []
    for t in score.tracks:  # each access to ``score.tracks`` builds its wrappers anew: one pass
        arrays.append(t.notes.numpy())
        names.append(t.name)
        programs.append(t.program)
        drums.append(t.is_drum)
    counts = np.array([len(a["time"]) for a in arrays], dtype=np.int64)
    tracks = (np.array(programs, dtype=np.int16), np.array(drums, dtype=bool), tuple(names))
    if len(arrays) == 1:  # one track: symusic's arrays as they are
        a = arrays[0]
        return NoteColumns(int(score.tpq), a["time"], a["duration"], a["pitch"], a["velocity"],
                           np.zeros(len(a["time"]), dtype=np.int32), counts, *tracks)
    if not arrays:
        e32, e8 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int8)
        return NoteColumns(int(score.tpq), e32, e32, e8, e8, e32, counts, *tracks)
    return NoteColumns(
        int(score.tpq),
        np.concatenate([a["time"] for a in arrays]),
        np.concatenate([a["duration"] for a in arrays]),
        np.concatenate([a["pitch"] for a in arrays]),
        np.concatenate([a["velocity"] for a in arrays]),
        np.repeat(np.arange(len(arrays), dtype=np.int32), counts),
        counts,
        *tracks,
    )
