"""The normalized note table: every score, whatever its format, as rows of notes.

Times are integer ticks at :data:`TPQ` ticks per quarter note (24: 16th notes and triplets
are exact), so that re-saved files with other resolutions give identical rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import symusic

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


def note_arrays(score: symusic.Score) -> dict[str, np.ndarray]:
    """Columns of ``NOTE_SCHEMA`` (without ``piece_id``) as numpy arrays, unsorted."""
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


def _sorted_notes(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((a["track"], a["pitch"], a["onset"]))
    return {k: v[order] for k, v in a.items()}


def piece_order(piece_ids: pl.Series) -> np.ndarray:
    """Row indices that order a note table whose pieces' rows come together, each sorted by
    onset, pitch, track (as :func:`notes_arrow` writes them), by piece id: the order of
    ``sort(["piece_id", "onset", "pitch", "track"])`` by moving whole runs, with no sort of the rows."""
    runs = piece_ids.rle()
    lens = runs.struct.field("len").to_numpy().astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    order = np.argsort(runs.struct.field("value").to_numpy(), kind="stable")
    lens, starts = lens[order], starts[order]
    first = np.concatenate(([0], np.cumsum(lens)[:-1]))  # where each run lands
    return np.repeat(starts - first, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def notes_arrow(parts: list[tuple[str, dict[str, np.ndarray]]]) -> pa.Table:
    """The rows of ``NOTE_SCHEMA`` for ``(piece_id, note_arrays(score))`` pairs as an Arrow table:
    each piece's rows together, in the given order, sorted by onset, pitch, track (cheap to
    build: no Python object per note)."""
    parts = [(pid, _sorted_notes(a)) for pid, a in parts]
    n = [len(a["pitch"]) for _, a in parts]
    cols = {k: np.concatenate([a[k] for _, a in parts]) if parts else np.zeros(0, dtype=_DTYPES[k])
            for k in _DTYPES}
    ids = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(len(parts), dtype=np.int32), n)),
                                         pa.array([pid for pid, _ in parts], type=pa.string())).cast(pa.string())
    return pa.table({"piece_id": ids, **{k: pa.array(cols[k]) for k in _DTYPES}})


def note_table(score: symusic.Score, piece_id: str) -> pl.DataFrame:
    """Rows of ``NOTE_SCHEMA`` for one score, sorted by onset, pitch, track."""
    return notes_frame([(piece_id, score)])


def piece_stats(score: symusic.Score) -> dict[str, float | int | str | None]:
    """Summary figures of a score for the pieces table and the UI."""
    pitched = [t.notes.numpy()["pitch"] for t in score.tracks if not t.is_drum and len(t.notes)]
    pitches = np.concatenate(pitched) if pitched else np.zeros(0, dtype=np.int16)
    quarters = score.end() / max(score.ticks_per_quarter, 1)
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    ts = score.time_signatures[0] if len(score.time_signatures) else None
    return {
        "n_notes": int(score.note_num()),
        "n_tracks": int(sum(1 for t in score.tracks if len(t.notes))),
        "quarters": float(quarters),
        "seconds": float(quarters * 60.0 / tempo) if tempo > 0 else None,
        "min_pitch": int(pitches.min()) if len(pitches) else None,
        "max_pitch": int(pitches.max()) if len(pitches) else None,
        "tempo": tempo,
        "time_signature": f"{ts.numerator}/{ts.denominator}" if ts else "4/4",
    }
