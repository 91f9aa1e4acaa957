"""The normalized note table: every score, whatever its format, as rows of notes.

Times are integer ticks at :data:`TPQ` ticks per quarter note (24: 16th notes and triplets
are exact), so that re-saved files with other resolutions give identical rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import symusic

from musicml.formats.midi.columns import NoteColumns, note_columns, sort_keys
from musicml.ingest import note_kernels

TPQ = 24

NOTE_SCHEMA: dict[str, pl.DataType] = {
    "piece_id": pl.String,
    "track": pl.Int16,
    "program": pl.Int16,
    "is_drum": pl.Boolean,
    "onset": pl.Int64,
    "duration": pl.Int64,
    "pitch": pl.Int16,
    "velocity": pl.Int16,
}
_DTYPES = {"track": np.int16, "program": np.int16, "is_drum": bool, "onset": np.int64, "duration": np.int64,
           "pitch": np.int16, "velocity": np.int16}  # NOTE_SCHEMA's columns but piece_id, in numpy
# How the note table's parts store it (:func:`notes_part_table`): onsets and durations as int32 (every
# tick of a score fits: symusic's own type, and ``_table_times`` refuses what resampling pushes past
# it), a sixth less to encode and write than int64; readers get ``NOTE_SCHEMA``
# (:func:`musicml.ingest.parsed.scan_notes` upcasts).
NOTE_PART_SCHEMA: dict[str, pl.DataType] = {**NOTE_SCHEMA, "onset": pl.Int32, "duration": pl.Int32}
_PART_DTYPES = {**_DTYPES, "onset": np.int32, "duration": np.int32}


def note_arrays(score: symusic.Score, columns: NoteColumns | None = None) -> dict[str, np.ndarray]:
    """Columns of ``NOTE_SCHEMA`` (without ``piece_id``) as numpy arrays, unsorted: the notes as
    ``score.resample(tpq=TPQ, min_dur=1)`` gives them. ``columns``: the score's
    :func:`~musicml.formats.midi.columns.note_columns` where the caller has them (the arrays
    returned may then be theirs: not to be changed in place)."""
    if score.ttype != symusic.TimeUnit.tick:  # resample converts these to ticks on its own
        return _note_arrays_resampled(score)
    c = note_columns(score) if columns is None else columns
    onset, duration, _ = (c.time, c.duration, None) if c.tpq == TPQ else _table_times(c)
    return {"track": c.track.astype(np.int16), "program": c.programs[c.track], "is_drum": c.drums[c.track],
            "onset": onset.astype(np.int64), "duration": duration.astype(np.int64),
            "pitch": c.pitch.astype(np.int16), "velocity": c.velocity.astype(np.int16)}


def sorted_note_arrays(score: symusic.Score, columns: NoteColumns | None = None) -> dict[str, np.ndarray]:
    """:func:`note_arrays` in the note table's order (onset, pitch, track; ties as stored): the
    rows :func:`notes_part_table` writes for the piece, so a batch of such parts is not sorted
    again. One compiled pass to resample and key the notes, numpy's sort of
    the keys, one compiled gather (:mod:`musicml.ingest.note_kernels`). The columns come in types
    narrower than ``_DTYPES`` where every value fits (onsets and durations int32, pitches and
    velocities int8, as symusic stores them): less to copy into the batch's table, which casts
    them to ``NOTE_PART_SCHEMA``'s types."""
    if score.ttype != symusic.TimeUnit.tick:
        return _sorted(_note_arrays_resampled(score))
    c = note_columns(score) if columns is None else columns
    onset, dur, key = _table_times(c)
    if len(key) == len(onset):
        sort_keys(key)  # distinct keys (the index is in their low bits): any sort is stable
        order, bits = key, max(1, len(c.time).bit_length())
    else:
        order, bits = np.lexsort((c.track, c.pitch, onset)), 0
    cols = note_kernels.gather_sorted(order, bits, onset, dur, c.pitch, c.velocity, c.track, c.programs, c.drums)
    return dict(zip(("track", "program", "is_drum", "onset", "duration", "pitch", "velocity"), cols, strict=True))


def _sorted(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((a["track"], a["pitch"], a["onset"]))
    return {k: a[k].astype(_DTYPES[k], copy=False)[order] for k in _DTYPES}


def _table_times(c: NoteColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets and durations at the table's resolution as symusic's ``resample`` gives them
    (``std::round(tpq_new / tpq_old * t)``, durations at least 1; the ticks as they are at
    :data:`TPQ`), and the notes' sort keys (empty where they do not fit:
    :func:`~musicml.ingest.note_kernels.resampled_keys`)."""
    scale = TPQ / c.tpq
    onset, dur, key, top_on, top_dur = note_kernels.resampled_keys(
        c.time, c.duration, c.pitch, c.track, scale, c.tpq != TPQ, max(1, len(c.time).bit_length()))
    # (with scale <= 1 no int32 tick can round past int32's range)
    if c.tpq != TPQ and scale > 1 and len(onset) and (max(top_on, top_dur) > 2**31 - 1 or onset.min() < -2**31):
        raise OverflowError("symusic::resample: time after resample is out of int32 range")
    return onset, dur, key


def _note_arrays_resampled(score: symusic.Score) -> dict[str, np.ndarray]:
    """:func:`note_arrays` through ``Score.resample``, for scores not in ticks."""
    score = score.resample(tpq=TPQ, min_dur=1) if score.ticks_per_quarter != TPQ else score
    cols: dict[str, list[np.ndarray]] = {k: [] for k in NOTE_SCHEMA if k != "piece_id"}
    for t, track in enumerate(score.tracks):
        if len(track.notes) == 0:
            continue
        arr = track.notes.numpy()
        n = len(arr["pitch"])
        cols["track"].append(np.full(n, t, dtype=np.int16))
        cols["program"].append(np.full(n, track.program, dtype=np.int16))
        cols["is_drum"].append(np.full(n, bool(track.is_drum)))
        cols["onset"].append(arr["time"].astype(np.int64))
        cols["duration"].append(arr["duration"].astype(np.int64))
        cols["pitch"].append(arr["pitch"].astype(np.int16))
        cols["velocity"].append(arr["velocity"].astype(np.int16))
    return {k: np.concatenate(v) if v else np.zeros(0, dtype=_DTYPES[k]) for k, v in cols.items()}


def notes_frame(scores: list[tuple[str, symusic.Score]]) -> pl.DataFrame:
    """One sorted note table for many ``(piece_id, score)`` pairs (built in one go: fast)."""
    return notes_frame_from_arrays([(pid, note_arrays(score)) for pid, score in scores])


def notes_frame_from_arrays(parts: list[tuple[str, dict[str, np.ndarray]]]) -> pl.DataFrame:
    """One sorted note table from ``(piece_id, note_arrays(score))`` pairs."""
    if not parts or not any(len(a["pitch"]) for _, a in parts):
        return pl.DataFrame(schema=NOTE_SCHEMA)
    data = {k: np.concatenate([a[k] for _, a in parts]) for k in parts[0][1]}
    ids = np.repeat(np.array([pid for pid, _ in parts], dtype=object), [len(a["pitch"]) for _, a in parts])
    df = pl.DataFrame(data).with_columns(pl.Series("piece_id", ids, dtype=pl.String))
    return df.select(list(NOTE_SCHEMA)).cast(NOTE_SCHEMA).sort(["piece_id", "onset", "pitch", "track"])


def notes_part_table(ids: list[str], parts: list[dict[str, np.ndarray]]) -> pa.Table:
    """The notes of pieces ``ids`` (``parts[i]``: :func:`sorted_note_arrays` of piece ``ids[i]``)
    as one Arrow table in ``NOTE_PART_SCHEMA``'s column order and types, each piece's rows together in
    the given order; ``piece_id`` dictionary encoded (an index per note into ``ids``: no string
    built per note, and parquet stores it as the string column it is)."""
    n = np.array([len(a["pitch"]) for a in parts], dtype=np.int64)
    cols = {k: np.concatenate([a[k] for a in parts], dtype=t, casting="same_kind") if parts else np.zeros(0, dtype=t)
            for k, t in _PART_DTYPES.items()}
    codes = np.repeat(np.arange(len(parts), dtype=np.int32), n)
    # (the codes' buffer as it is, and unchecked: each is an index into ``ids`` by construction;
    # ``pa.array`` of int32 and the check cost ~120 us a batch)
    indices = pa.Array.from_buffers(pa.int32(), len(codes), [None, pa.py_buffer(codes)])
    piece_id = pa.DictionaryArray.from_arrays(indices, pa.array(ids, pa.string()), safe=False)
    return pa.table({"piece_id": piece_id, **cols})


def note_table(score: symusic.Score, piece_id: str) -> pl.DataFrame:
    """Rows of ``NOTE_SCHEMA`` for one score, sorted by onset, pitch, track."""
    return notes_frame([(piece_id, score)])


def piece_stats(score: symusic.Score, columns: NoteColumns | None = None) -> dict[str, float | int | str | None]:
    """Summary figures of a score for the pieces table and the UI (``columns`` as in
    :func:`note_arrays`)."""
    if columns is None:
        pitched = [t.notes.numpy()["pitch"] for t in score.tracks if not t.is_drum and len(t.notes)]
        pitches = np.concatenate(pitched) if pitched else np.zeros(0, dtype=np.int16)
        n_tracks = sum(1 for t in score.tracks if len(t.notes))
        lo, hi = (int(pitches.min()), int(pitches.max())) if len(pitches) else (None, None)
    else:
        low, high, pitched = note_kernels.pitched_range(columns.pitch, columns.track, columns.drums)
        lo, hi = (int(low), int(high)) if pitched else (None, None)
        n_tracks = int(np.count_nonzero(columns.counts))
    quarters = score.end() / max(score.ticks_per_quarter, 1)
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    ts = score.time_signatures[0] if len(score.time_signatures) else None
    return {
        "n_notes": int(score.note_num()),
        "n_tracks": int(n_tracks),
        "quarters": float(quarters),
        "seconds": float(quarters * 60.0 / tempo) if tempo > 0 else None,
        "min_pitch": lo,
        "max_pitch": hi,
        "tempo": tempo,
        "time_signature": f"{ts.numerator}/{ts.denominator}" if ts else "4/4",
    }
