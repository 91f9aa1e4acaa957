"""Musical metrics on hand-built scores whose answers are known, and the overlapping area."""

from __future__ import annotations

import math

import numpy as np
import pytest
import symusic

from musicml.evaluate import musical
from musicml.ingest.corpus import music21_abc_files
from musicml.ingest.note_table import TPQ

Q = TPQ  # one beat (a quarter note) in ticks


def score(notes: list[tuple[int, int, int]], *, ts=(4, 4), drums: list[tuple[int, int, int]] = ()) -> symusic.Score:
    """A score at TPQ from ``(onset, duration, pitch)`` triples in ticks (second track: drums)."""
    s = symusic.Score(TPQ)
    s.time_signatures.append(symusic.TimeSignature(0, *ts))
    t = symusic.Track(program=0)
    for on, dur, pitch in notes:
        t.notes.append(symusic.Note(on, dur, pitch, 80))
    s.tracks.append(t)
    if drums:
        d = symusic.Track(program=0, is_drum=True)
        for on, dur, pitch in drums:
            d.notes.append(symusic.Note(on, dur, pitch, 80))
        s.tracks.append(d)
    return s


C_MAJOR_SCALE = [(i * Q, Q, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]  # two 4/4 bars


def test_c_major_scale() -> None:
    m = musical.score_metrics(score(C_MAJOR_SCALE))
    assert m["pitch_range"] == 12
    assert m["n_pitch_classes"] == 7
    assert m["scale_consistency"] == 1.0
    assert m["polyphony"] == 1.0
    assert m["empty_beat_rate"] == 0.0
    assert m["note_density"] == 1.0
    assert m["mean_ioi"] == 1.0
    assert m["mean_pitch_interval"] == pytest.approx(12 / 7)
    assert m["groove_consistency"] == 1.0  # both bars: onsets on every beat
    p = np.bincount(np.array([60, 62, 64, 65, 67, 69, 71, 72]) % 12, minlength=12) / 8
    assert m["pitch_class_entropy"] == pytest.approx(-(p[p > 0] * np.log2(p[p > 0])).sum())


def test_chords_rests_and_drums() -> None:
    # a C major triad for two beats, two beats of rest, then one E for a beat; drums ignored by pitch metrics
    notes = [(0, 2 * Q, 60), (0, 2 * Q, 64), (0, 2 * Q, 67), (4 * Q, Q, 64)]
    s = score(notes, drums=[(0, 1, 36), (4 * Q, 1, 36)])
    m = musical.score_metrics(s)
    assert m["polyphony"] == pytest.approx((3 * 2 * Q + Q) / (3 * Q))
    assert m["pitch_range"] == 7 and m["n_pitch_classes"] == 3
    assert m["empty_beat_rate"] == pytest.approx(2 / 5)  # beats 2 and 3 of five are silent
    assert m["note_density"] == pytest.approx(6 / 5)  # six notes (drums included) over five beats
    assert m["mean_ioi"] == 4.0  # onsets at beats 0 and 4
    assert musical.pitch_intervals({**musical.score_notes(s)[0]}).tolist() == [4, 3, -3]
    assert musical.ioi_histogram(musical.score_notes(s)[0]).tolist() == [0, 0, 0, 0, 0, 1]


def test_pitch_class_entropy_uniform_and_single() -> None:
    chromatic = score([(i * Q, Q, 60 + i) for i in range(12)])
    assert musical.score_metrics(chromatic)["pitch_class_entropy"] == pytest.approx(math.log2(12))
    assert musical.score_metrics(chromatic)["scale_consistency"] == pytest.approx(7 / 12)
    repeated = score([(i * Q, Q, 60 + 12 * (i % 2)) for i in range(4)])
    assert musical.score_metrics(repeated)["pitch_class_entropy"] == 0.0


def test_groove_consistency_of_two_different_bars() -> None:
    # 3/4: bar 1 has onsets on beats 1-3, bar 2 only on beat 1 -> 2 of 72 slots differ
    s = score([(0, Q, 60), (Q, Q, 62), (2 * Q, Q, 64), (3 * Q, 3 * Q, 65)], ts=(3, 4))
    assert musical.score_metrics(s)["groove_consistency"] == pytest.approx(1 - 2 / (3 * Q))
    one_bar = score([(0, Q, 60)])
    assert math.isnan(musical.score_metrics(one_bar)["groove_consistency"])


def test_empty_score_gives_nan_not_errors() -> None:
    m = musical.score_metrics(score([]))
    assert math.isnan(m["pitch_class_entropy"]) and math.isnan(m["polyphony"])
    assert m["pitch_range"] == 0 and m["n_pitch_classes"] == 0
    assert math.isnan(m["empty_beat_rate"]) and math.isnan(m["mean_ioi"])


def test_real_tune_is_in_range() -> None:
    from musicml.formats.abc import read_abc

    path = sorted(music21_abc_files(), key=lambda p: p.stat().st_size)[5]
    tunes, _ = read_abc(path.read_text(errors="replace"), path.name)
    m = musical.score_metrics(next(t.score for t in tunes if t.score is not None and t.score.note_num()))
    assert 0 < m["pitch_class_entropy"] <= math.log2(12)
    assert 0 < m["scale_consistency"] <= 1 and 0 <= m["empty_beat_rate"] < 1
    assert 1 <= m["n_pitch_classes"] <= 12 and m["polyphony"] >= 1


def test_overlapping_area_identical_and_disjoint() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 200)
    assert musical.overlapping_area(a, a) == pytest.approx(1.0, abs=1e-3)
    assert musical.overlapping_area(a, a + 100) == pytest.approx(0.0, abs=1e-6)
    half = musical.overlapping_area(a, a + 1.0)
    assert 0.3 < half < 0.9
    assert musical.overlapping_area([3.0] * 5, [3.0] * 8) == pytest.approx(1.0, abs=1e-3)  # no spread
    assert musical.overlapping_area([0.0] * 5, [10.0] * 5) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(musical.overlapping_area([], [1.0])) and math.isnan(musical.overlapping_area([math.nan], [1.0]))


def test_histogram_overlap() -> None:
    assert musical.histogram_overlap(np.array([1, 2, 3]), np.array([2, 4, 6])) == pytest.approx(1.0)
    assert musical.histogram_overlap(np.array([1, 0]), np.array([0, 5])) == 0.0
    assert musical.histogram_overlap(np.array([1, 1]), np.array([1, 0])) == pytest.approx(0.5)
    assert math.isnan(musical.histogram_overlap(np.array([0, 0]), np.array([1, 0])))


def test_set_metrics_compare_and_means() -> None:
    pieces = [musical.score_notes(score(C_MAJOR_SCALE)), musical.score_notes(score(C_MAJOR_SCALE[:4]))]
    sets = musical.set_metrics(pieces)
    assert sets["pitch_range"] == [12.0, 5.0]
    assert musical.means(sets)["mm_pitch_range"] == 8.5
    same = musical.compare(sets, sets)
    assert set(same) == {f"oa_{m}" for m in (*musical.METRICS, *musical.HISTOGRAMS)}
    assert same["oa_pitch_range"] == pytest.approx(1.0, abs=1e-3)
    assert same["oa_ioi_histogram"] == pytest.approx(1.0)
