"""Musical metrics of scores, and the overlapping area of their distributions between two sets.

Every metric is computed with numpy on a piece's notes at :data:`musicml.ingest.note_table.TPQ`
ticks per quarter (a beat is a quarter note), from a ``symusic.Score`` (:func:`score_metrics`)
or straight from note-table columns (:func:`metrics`). Pitch metrics ignore drum tracks, as in
MusPy. Definitions follow MusPy (Dong et al., "MusPy: A Toolkit for Symbolic Music Generation",
ISMIR 2020) and Yang & Lerch ("On the evaluation of generative models in music", Neural
Computing and Applications, 2018); each function's docstring says which. The ``muspy`` package
itself is not used: its last release (0.5.0) needs five packages outside the pinned stack
(bidict, miditoolkit, mido, pretty-midi, pypianoroll) and its own ``Music`` objects.

:func:`overlapping_area` is Yang & Lerch's overlapping area of two distributions, each estimated
with a Gaussian kernel density; :func:`histogram_overlap` is the same for two histograms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import symusic

from musicml.ingest.note_table import TPQ, note_arrays

# Scalar metrics, per piece: mm_<name> (mean over a set) and oa_<name> (overlap of two sets).
METRICS = ("pitch_class_entropy", "pitch_range", "n_pitch_classes", "polyphony", "scale_consistency",
           "groove_consistency", "empty_beat_rate", "note_density", "mean_ioi", "mean_pitch_interval")
# Histograms, pooled over a set: oa_<name> compares the pooled, normalized histograms.
HISTOGRAMS = ("ioi_histogram", "pitch_interval_histogram")
# Inter-onset-interval bin edges in beats: < 16th, 16th-8th, 8th-quarter, quarter-half, half-whole, longer.
IOI_EDGES = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, np.inf])
MAX_INTERVAL = 12  # pitch intervals are clipped to -12..12 semitones (25 bins)
_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)
_SCALES = np.array([np.roll(s, root) for s in (_MAJOR, _MINOR) for root in range(12)])


def _pitched(notes: Mapping[str, np.ndarray]) -> np.ndarray:
    return ~np.asarray(notes["is_drum"], bool)


def pitch_class_entropy(notes: Mapping[str, np.ndarray]) -> float:
    """Shannon entropy (bits) of the pitch-class histogram (MusPy ``pitch_class_entropy``,
    after Wu & Yang 2020). NaN without pitched notes."""
    pitches = np.asarray(notes["pitch"])[_pitched(notes)]
    if len(pitches) == 0:
        return math.nan
    p = np.bincount(pitches % 12, minlength=12) / len(pitches)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def pitch_range(notes: Mapping[str, np.ndarray]) -> float:
    """Highest minus lowest pitch in semitones (MusPy ``pitch_range``; Yang & Lerch's PR).
    0 without pitched notes."""
    pitches = np.asarray(notes["pitch"])[_pitched(notes)]
    return float(pitches.max() - pitches.min()) if len(pitches) else 0.0


def n_pitch_classes(notes: Mapping[str, np.ndarray]) -> float:
    """Number of distinct pitch classes used (MusPy ``n_pitch_classes_used``)."""
    pitches = np.asarray(notes["pitch"])[_pitched(notes)]
    return float(len(np.unique(pitches % 12)))


def polyphony(notes: Mapping[str, np.ndarray]) -> float:
    """Mean number of distinct pitches sounding, over the ticks where at least one sounds
    (MusPy ``polyphony``). NaN without pitched notes."""
    keep = _pitched(notes)
    onset = np.asarray(notes["onset"])[keep]
    if len(onset) == 0:
        return math.nan
    end = onset + np.maximum(np.asarray(notes["duration"])[keep], 1)
    roll = np.zeros((int(end.max()) + 1, 128), np.int32)
    pitch = np.asarray(notes["pitch"])[keep].astype(np.int64)
    np.add.at(roll, (onset, pitch), 1)
    np.add.at(roll, (end, pitch), -1)
    on = np.cumsum(roll, axis=0)[:-1] > 0
    sounding = on.any(axis=1)
    return float(on.sum() / sounding.sum())


def scale_consistency(notes: Mapping[str, np.ndarray]) -> float:
    """Largest fraction of notes inside one major or minor scale, over the 24 scales (MusPy
    ``scale_consistency``, after Mogren 2016). NaN without pitched notes."""
    pitches = np.asarray(notes["pitch"])[_pitched(notes)]
    if len(pitches) == 0:
        return math.nan
    hist = np.bincount(pitches % 12, minlength=12)
    return float((_SCALES @ hist).max() / len(pitches))


def groove_consistency(notes: Mapping[str, np.ndarray], bar_ticks: int) -> float:
    """1 - mean Hamming distance between the onset patterns (one slot per tick) of neighbouring
    bars, divided by the bar length (MusPy ``groove_consistency``, after Wu & Yang 2020); all
    tracks, drums included. NaN with fewer than two bars."""
    onset = np.asarray(notes["onset"], np.int64)
    if len(onset) == 0 or bar_ticks < 1:
        return math.nan
    end = int((onset + np.asarray(notes["duration"])).max())
    n_bars = -(-end // bar_ticks)  # bars the piece spans (MusPy adds an empty one past a bar-line end)
    if n_bars < 2:
        return math.nan
    grid = np.zeros((n_bars, bar_ticks), bool)
    grid[onset // bar_ticks, onset % bar_ticks] = True
    return float(1 - np.count_nonzero(grid[:-1] != grid[1:]) / (bar_ticks * (n_bars - 1)))


def _n_beats(notes: Mapping[str, np.ndarray], tpq: int) -> int:
    end = np.asarray(notes["onset"]) + np.asarray(notes["duration"])
    return int(-(-int(end.max()) // tpq)) if len(end) else 0


def empty_beat_rate(notes: Mapping[str, np.ndarray], tpq: int = TPQ) -> float:
    """Fraction of beats (quarters, from 0 to the last note's end) in which no note sounds
    (MusPy ``empty_beat_rate``; here a note ending on a beat line does not reach into the next
    beat). NaN for an empty piece."""
    n = _n_beats(notes, tpq)
    if n == 0:
        return math.nan
    onset = np.asarray(notes["onset"], np.int64)
    end = onset + np.maximum(np.asarray(notes["duration"], np.int64), 1)
    cover = np.zeros(n + 1, np.int64)
    np.add.at(cover, onset // tpq, 1)
    np.add.at(cover, -(-end // tpq), -1)
    return float((np.cumsum(cover)[:n] == 0).mean())


def note_density(notes: Mapping[str, np.ndarray], tpq: int = TPQ) -> float:
    """Notes per beat over the piece's length (Yang & Lerch's note count, per beat so that
    pieces of different lengths compare). NaN for an empty piece."""
    n = _n_beats(notes, tpq)
    return len(notes["onset"]) / n if n else math.nan


def inter_onset_intervals(notes: Mapping[str, np.ndarray], tpq: int = TPQ) -> np.ndarray:
    """Beats between consecutive distinct onsets of the piece, all tracks merged (Yang & Lerch's
    IOI)."""
    onsets = np.unique(np.asarray(notes["onset"], np.int64))
    return np.diff(onsets) / tpq


def pitch_intervals(notes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Signed semitones between consecutive notes of each pitched track, in (onset, pitch) order
    (Yang & Lerch's pitch interval)."""
    keep = _pitched(notes)
    track = np.asarray(notes["track"])[keep]
    order = np.lexsort((np.asarray(notes["pitch"])[keep], np.asarray(notes["onset"])[keep], track))
    pitch = np.asarray(notes["pitch"], np.int64)[keep][order]
    same = track[order][1:] == track[order][:-1]
    return np.diff(pitch)[same]


def ioi_histogram(notes: Mapping[str, np.ndarray], tpq: int = TPQ) -> np.ndarray:
    """Counts of inter-onset intervals in the :data:`IOI_EDGES` bins."""
    return np.histogram(inter_onset_intervals(notes, tpq), bins=IOI_EDGES)[0]


def pitch_interval_histogram(notes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Counts of pitch intervals -12..12 (clipped), 25 bins."""
    iv = np.clip(pitch_intervals(notes), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    return np.bincount(iv, minlength=2 * MAX_INTERVAL + 1)


def metrics(notes: Mapping[str, np.ndarray], time_signature: tuple[int, int] = (4, 4),
            tpq: int = TPQ) -> dict[str, float]:
    """Every scalar of :data:`METRICS` for one piece's note columns (``onset``, ``duration``,
    ``pitch``, ``track``, ``is_drum``; ticks at ``tpq``)."""
    num, den = time_signature
    iois, intervals = inter_onset_intervals(notes, tpq), pitch_intervals(notes)
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "pitch_range": pitch_range(notes),
        "n_pitch_classes": n_pitch_classes(notes),
        "polyphony": polyphony(notes),
        "scale_consistency": scale_consistency(notes),
        "groove_consistency": groove_consistency(notes, num * 4 * tpq // den),
        "empty_beat_rate": empty_beat_rate(notes, tpq),
        "note_density": note_density(notes, tpq),
        "mean_ioi": float(iois.mean()) if len(iois) else math.nan,
        "mean_pitch_interval": float(np.abs(intervals).mean()) if len(intervals) else math.nan,
    }


def score_notes(score: symusic.Score) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """Note columns at :data:`TPQ` and the first time signature (4/4 without one) of a score."""
    ts = score.time_signatures[0] if len(score.time_signatures) else None
    return note_arrays(score), (ts.numerator, ts.denominator) if ts else (4, 4)


def score_metrics(score: symusic.Score) -> dict[str, float]:
    """:func:`metrics` of a ``symusic.Score``."""
    notes, ts = score_notes(score)
    return metrics(notes, ts)


def _bandwidth(x: np.ndarray, fallback: float) -> float:
    """Scott's rule (as ``scipy.stats.gaussian_kde``): std * n^(-1/5); ``fallback`` when the set
    has no spread."""
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return sd * len(x) ** (-0.2) if sd > 0 else fallback


def overlapping_area(a: Sequence[float], b: Sequence[float], grid: int = 2048) -> float:
    """Overlapping area of the distributions of samples ``a`` and ``b`` (Yang & Lerch 2018): the
    integral of the pointwise minimum of their Gaussian kernel density estimates (Scott's
    bandwidth). 1 for identical sets, near 0 for sets far apart; NaN values are dropped, and
    either set empty gives NaN. A set without spread gets the other's bandwidth (or a tenth of
    the distance between the sets, or 1 when both are one point)."""
    x = np.asarray([v for v in a if v is not None and math.isfinite(v)], float)
    y = np.asarray([v for v in b if v is not None and math.isfinite(v)], float)
    if len(x) == 0 or len(y) == 0:
        return math.nan
    gap = abs(float(np.median(x) - np.median(y))) / 10 or 1.0
    hx, hy = _bandwidth(x, 0.0), _bandwidth(y, 0.0)
    hx, hy = hx or hy or gap, hy or hx or gap
    lo = min(x.min() - 5 * hx, y.min() - 5 * hy)
    hi = max(x.max() + 5 * hx, y.max() + 5 * hy)
    t = np.linspace(lo, hi, grid)

    def kde(s: np.ndarray, h: float) -> np.ndarray:
        z = (t[:, None] - s[None, :]) / h
        return np.exp(-0.5 * z * z).sum(axis=1) / (len(s) * h * math.sqrt(2 * math.pi))

    return float(min(1.0, np.trapezoid(np.minimum(kde(x, hx), kde(y, hy)), t)))


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area of two histograms over the same bins: sum of the minimum of the two
    normalized histograms (1 identical, 0 disjoint; NaN when either is empty)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.sum() == 0 or b.sum() == 0:
        return math.nan
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def set_metrics(pieces: Sequence[tuple[Mapping[str, np.ndarray], tuple[int, int]]]) -> dict:
    """Per-piece scalars (lists under each :data:`METRICS` name) and pooled histograms (under each
    :data:`HISTOGRAMS` name) of a set of ``(note columns, time signature)`` pieces."""
    out: dict = {m: [] for m in METRICS}
    out["ioi_histogram"] = np.zeros(len(IOI_EDGES) - 1, np.int64)
    out["pitch_interval_histogram"] = np.zeros(2 * MAX_INTERVAL + 1, np.int64)
    for notes, ts in pieces:
        for k, v in metrics(notes, ts).items():
            out[k].append(v)
        out["ioi_histogram"] += ioi_histogram(notes)
        out["pitch_interval_histogram"] += pitch_interval_histogram(notes)
    return out


def compare(generated: Mapping, reference: Mapping) -> dict[str, float]:
    """``oa_<name>`` of every metric and histogram between two :func:`set_metrics` results."""
    out = {f"oa_{m}": overlapping_area(generated[m], reference[m]) for m in METRICS}
    out.update({f"oa_{h}": histogram_overlap(generated[h], reference[h]) for h in HISTOGRAMS})
    return out


def means(sets: Mapping) -> dict[str, float]:
    """``mm_<name>``: the mean of each scalar metric over the pieces (NaN values left out)."""
    out = {}
    for m in METRICS:
        vals = [v for v in sets[m] if math.isfinite(v)]
        out[f"mm_{m}"] = float(np.mean(vals)) if vals else math.nan
    return out
