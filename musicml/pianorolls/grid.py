"""Piano rolls: a score as a pitch x time matrix on a grid (FractalGen-MIDI's representation).

``to_pianoroll`` quantizes with the same rules as the MIDI text form
(:func:`musicml.formats.midi.text.quantize`: onsets and ends rounded to the grid, at least one
step long) and then uses symusic's own ``Score.pianoroll``. Row ``p`` is MIDI pitch ``p`` (row 0
is C-1, row 127 is G9), column ``t`` is grid step ``t`` (``grid`` steps per quarter note, 4 =
sixteenths). Cells hold 1 where a note sounds, or its velocity with ``velocity=True``.

A frame roll cannot tell a held note from the same pitch struck again on the next step:
``from_pianoroll`` joins such runs into one note, except in velocity rolls where a change of
value starts a new note.
"""

from __future__ import annotations

import numpy as np
from symusic import Note, Score, Tempo, TimeSignature, Track

from musicml.formats.midi.text import quantize

__all__ = ["to_pianoroll", "from_pianoroll"]


def to_pianoroll(
    score: Score,
    *,
    grid: int = 4,
    merge_tracks: bool = True,
    velocity: bool = False,
    drums: bool = False,
    length: int | None = None,
) -> np.ndarray:
    """A ``uint8`` piano roll of ``score``.

    Shape ``(128, T)`` with ``merge_tracks`` (the loudest track wins a cell), otherwise
    ``(tracks, 128, T)``. ``T`` is the end of the last note in grid steps, or ``length``
    (cropping or padding with zeros). Drum tracks are left out unless ``drums=True``; values
    are 0/1, or velocities 1..127 with ``velocity=True``.
    """
    q = quantize(score, grid=grid)
    kept = [t for t in q.tracks if drums or not t.is_drum]
    end = max((t.end() for t in kept if t.note_num()), default=0)
    steps = end if length is None else int(length)
    if kept:
        sub = Score(grid)
        for t in kept:
            sub.tracks.append(t)
        roll = sub.pianoroll(modes=["frame"], pitch_range=(0, 128), encode_velocity=velocity)[0]
    else:
        roll = np.zeros((0, 128, 0), dtype=np.uint8)
    roll = np.asarray(roll, dtype=np.uint8)
    if roll.shape[2] >= steps:
        roll = roll[:, :, :steps]
    else:
        roll = np.pad(roll, ((0, 0), (0, 0), (0, steps - roll.shape[2])))
    if merge_tracks:
        return roll.max(axis=0) if len(roll) else np.zeros((128, steps), dtype=np.uint8)
    return np.ascontiguousarray(roll)


def _row_notes(row: np.ndarray, split_on_change: bool):
    """(onset, duration, value) of the runs of non-zero cells in one pitch row."""
    padded = np.concatenate(([0], row, [0]))
    if split_on_change:
        change = np.flatnonzero(padded[1:] != padded[:-1])  # a new value starts at change[i]
        values = padded[1:][change]
        ends = np.append(change[1:], len(row))
        keep = values[: len(change)] > 0
        return change[keep], (ends - change)[keep], values[keep]
    d = np.diff((padded > 0).astype(np.int8))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return starts, stops - starts, np.zeros(len(starts), dtype=np.int64)


def from_pianoroll(
    roll: np.ndarray,
    *,
    grid: int = 4,
    tempo: float = 120,
    program: int | list[int] = 0,
    velocity: int = 64,
    is_drum: bool | list[bool] = False,
    tpq: int | None = None,
) -> Score:
    """A ``symusic.Score`` from a ``(128, T)`` roll (one track) or ``(tracks, 128, T)`` roll.

    Binary rolls (bool, or values 0/1) give notes of ``velocity``; other values are taken as
    velocities (clipped to 1..127) and a change of value starts a new note. The score has one
    tempo and a 4/4 signature; ``tpq`` defaults to the smallest multiple of ``grid`` >= 480.
    ``program`` and ``is_drum`` may be given per track.
    """
    arr = np.asarray(roll)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != 128:
        raise ValueError(
            f"expected a (128, T) or (tracks, 128, T) roll, got shape {np.shape(roll)}"
        )
    if tpq is None:
        tpq = grid * -(-480 // grid)
    f = tpq // grid
    binary = arr.dtype == bool or (arr.size > 0 and int(arr.max()) <= 1)
    arr = arr.astype(np.int64)
    n = arr.shape[0]
    programs = list(program) if isinstance(program, (list, tuple)) else [program] * n
    drums = list(is_drum) if isinstance(is_drum, (list, tuple)) else [is_drum] * n
    score = Score(tpq)
    score.tempos.append(Tempo(0, qpm=float(tempo)))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    for k in range(n):
        ons, durs, pitches, vels = [], [], [], []
        for p in range(128):
            row = arr[k, p]
            if not row.any():
                continue
            on, dur, val = _row_notes(row, split_on_change=not binary)
            ons.append(on)
            durs.append(dur)
            pitches.append(np.full(len(on), p))
            vels.append(np.full(len(on), velocity) if binary else np.clip(val, 1, 127))
        track = Track("", int(programs[k]), bool(drums[k]))
        if ons:
            on = np.concatenate(ons)
            order = np.lexsort((np.concatenate(pitches), on))
            track.notes = Note.from_numpy(
                (on[order] * f).astype(np.int32),
                (np.concatenate(durs)[order] * f).astype(np.int32),
                np.concatenate(pitches)[order].astype(np.int8),
                np.concatenate(vels)[order].astype(np.int8),
            )
        score.tracks.append(track)
    return score
