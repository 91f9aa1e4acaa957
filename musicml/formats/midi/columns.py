"""Every note of a ``symusic.Score`` as flat numpy columns, made once and shared.

The MIDI text encoder (:func:`musicml.formats.midi.text.encode`), the note table
(:func:`musicml.ingest.note_table.note_arrays`) and the piece statistics
(:func:`musicml.ingest.note_table.piece_stats`) all start from the score's notes; converting
them once and passing the columns along saves a conversion per consumer on the ingestion path.

The notes are read from the bytes symusic pickles a track's notes as (``NoteTickList.__getstate__``:
a uint32 count, then each note as its C++ struct, 12 bytes: int32 time, int32 duration, int8
pitch, int8 velocity, 2 bytes of padding), one ``np.frombuffer`` for the whole score: a fifth of
the time of ``Track.notes.numpy()``, which builds four arrays per track note by note. The layout
is symusic's, not documented: it is checked once per process against ``numpy()`` on a probe
(values at every field's limits) and on every track by its length, and where either check fails
``numpy()`` is used (the same columns, slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import symusic

__all__ = ["NoteColumns", "note_columns", "sort_keys"]


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
    names, programs, drums, states = [], [], [], []
    for t in score.tracks:  # each access to ``score.tracks`` builds its wrappers anew: one pass
        states.append(t.notes)
        names.append(t.name)
        programs.append(t.program)
        drums.append(t.is_drum)
    tracks = (np.array(programs, dtype=np.int16), np.array(drums, dtype=bool), tuple(names))
    columns = _from_states(states) if _states_readable() else None
    if columns is None:
        columns = _from_numpy(states)
    time, duration, pitch, velocity, counts = columns
    if len(counts) == 1:
        track = np.zeros(len(time), dtype=np.int32)
    else:
        track = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    return NoteColumns(int(score.tpq), time, duration, pitch, velocity, track, counts, *tracks)


_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# one note of NoteTickList.__getstate__ (after the uint32 count)
_NOTE_RECORD = np.dtype({"names": ["time", "duration", "pitch", "velocity"], "formats": ["<i4", "<i4", "i1", "i1"],
                         "offsets": [0, 4, 8, 9], "itemsize": 12})


def _from_states(note_lists: list) -> _Columns | None:
    """The columns from the note lists' pickled bytes; None where one's length does not match."""
    counts = np.empty(len(note_lists), dtype=np.int64)
    parts = []
    for i, notes in enumerate(note_lists):
        state, n = notes.__getstate__(), len(notes)
        if len(state) != 4 + _NOTE_RECORD.itemsize * n or int.from_bytes(state[:4], "little") != n:
            return None
        counts[i] = n
        parts.append(memoryview(state)[4:])
    records = np.frombuffer(b"".join(parts), dtype=_NOTE_RECORD)
    # copies (writable, contiguous: the compiled kernels' argument types), also of one note
    return (records["time"].copy(), records["duration"].copy(), records["pitch"].copy(), records["velocity"].copy(),
            counts)


def _from_numpy(note_lists: list) -> _Columns:
    """The columns by ``numpy()`` of each note list (symusic's own types)."""
    arrays = [notes.numpy() for notes in note_lists]
    counts = np.array([len(a["time"]) for a in arrays], dtype=np.int64)
    if len(arrays) == 1:  # one track: symusic's arrays as they are
        a = arrays[0]
        return a["time"], a["duration"], a["pitch"], a["velocity"], counts
    if not arrays:
        e32, e8 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int8)
        return e32, e32, e8, e8, counts
    return (np.concatenate([a["time"] for a in arrays]), np.concatenate([a["duration"] for a in arrays]),
            np.concatenate([a["pitch"] for a in arrays]), np.concatenate([a["velocity"] for a in arrays]), counts)


@lru_cache(maxsize=1)
def _states_readable() -> bool:
    """Whether this symusic's note bytes have the layout :data:`_NOTE_RECORD` reads: checked on a
    probe of notes at every field's limits against ``numpy()``."""
    notes = symusic.Track("probe", 0, False).notes
    for time, duration, pitch, velocity in ((0, 1, 0, 0), (2**31 - 1, 2**31 - 1, 127, 127), (-(2**31), 7, -128, -128),
                                            (123_456, 65_537, 60, 1)):
        notes.append(symusic.Note(time, duration, pitch, velocity))
    try:
        fast = _from_states([notes, symusic.Track("empty", 0, False).notes])
    except Exception:  # a symusic whose lists do not pickle so
        return False
    slow = _from_numpy([notes])
    return fast is not None and fast[4].tolist() == [4, 0] and all(
        np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(fast[:4], slow[:4], strict=True))


def sort_keys(key: np.ndarray) -> None:
    """Sort distinct int64 keys in place (the MIDI text's and the note table's: each note's key
    with its index in the low bits, so any sort gives the one order), with the faster of numpy's
    sorts on this machine (:func:`_sort_kind`)."""
    key.sort(kind=_sort_kind())


@lru_cache(maxsize=1)
def _sort_kind() -> str:
    """``"stable"`` or ``"quicksort"``, whichever sorts keys shaped as a score's are faster here,
    timed once per process (~1 ms). A score's keys come track by track, each track's mostly in
    time order: a few long sorted runs, which the stable sort (timsort) merges in O(n log runs).
    Measured on POP909 and its versions (2026-12-07, a 2-core AMD EPYC without AVX-512): the
    text's keys 24.1 -> 12.2 us a file, the note table's 16.9 -> 8.5; where numpy's quicksort is
    AVX-512's vectorized sort it may be the faster, hence the timing rather than a fixed choice."""
    import time

    rng = np.random.default_rng(0)
    runs = [np.sort(rng.integers(0, 1 << 40, 700)) for _ in range(3)]  # three tracks of 700 notes
    sample = np.concatenate(runs)
    best = {}
    for kind in ("stable", "quicksort"):
        times = []
        for _ in range(5):
            a = sample.copy()
            t0 = time.perf_counter()
            a.sort(kind=kind)
            times.append(time.perf_counter() - t0)
        best[kind] = min(times)
    return min(best, key=best.get)
