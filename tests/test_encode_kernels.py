"""The MIDI text encoder's compiled kernels (musicml/formats/midi/encode_kernels.py): the sort
fallback, numbers beyond every table, frozen kernels, and the worker's memory limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from symusic import Note, Score, Tempo, TimeSignature, Track
from test_miditext import assert_round_trip
from test_miditext_stored import _abc_scores

from musicml.formats.midi import text as miditext
from musicml.formats.midi.text import encode
from musicml.ingest import IngestConfig, ingest
from musicml.lake import Lake

REPO = Path(__file__).resolve().parents[1]


def test_lexsort_fallback_gives_the_same_text(monkeypatch):
    """Notes whose sort key would not fit an int64 are sorted by ``np.lexsort``: same text."""
    scores = list(_abc_scores().values())[:40]
    options = [{}, {"grid": 12, "velocity_bins": 32, "max_tracks": 2}, {"grid": 480, "names": False}]
    packed = [encode(s, **o) for s in scores for o in options]
    monkeypatch.setattr(miditext, "_PACKED_KEY_BITS", 0)
    assert [encode(s, **o) for s in scores for o in options] == packed
    assert sum(len(t) for t in packed) > 100_000  # real music, not empty texts


def _random_scores(n: int, seed: int) -> list[Score]:
    """Scores at odd resolutions with notes before 0, outside 0..127, of negative durations, and
    time signatures that are invalid, at negative times, or off the bar lines."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n):
        score = Score(int(rng.choice([1, 3, 24, 96, 480, 960])))
        for t in range(int(rng.integers(0, 4))):
            track = Track(f"t{t}", int(rng.integers(0, 128)), bool(rng.random() < 0.2))
            for _ in range(int(rng.integers(0, 30))):
                track.notes.append(Note(int(rng.integers(-50, 5000)), int(rng.integers(-5, 800)),
                                        int(rng.integers(-5, 128)), int(rng.integers(-10, 128))))
            score.tracks.append(track)
        for _ in range(int(rng.integers(0, 4))):
            score.time_signatures.append(TimeSignature(int(rng.integers(-100, 5000)), int(rng.choice([0, 1, 3, 5, 7, 12, 200])),
                                                       int(rng.choice([0, 1, 2, 3, 4, 8, 16, 64]))))
        for _ in range(int(rng.integers(0, 3))):
            score.tempos.append(Tempo(int(rng.integers(-100, 5000)), float(rng.uniform(20, 300))))
        scores.append(score)
    return scores


def test_the_one_call_layout_gives_the_general_paths_text(monkeypatch):
    """``grid_keys`` (segments, bars and keyed notes in one compiled call) writes what the general
    path writes step by step: real music and odd random scores, at several grids."""
    scores = list(_abc_scores().values())[:40] + _random_scores(300, seed=1)
    options = [{}, {"grid": 12, "velocity_bins": 32}, {"grid": 1, "velocity_bins": 128, "names": False},
               {"max_tracks": 1}]
    fast = [encode(s, **o) for s in scores for o in options]
    monkeypatch.setattr(miditext, "_ONE_CALL", False)
    assert [encode(s, **o) for s in scores for o in options] == fast
    assert sum(len(t) for t in fast) > 100_000 and sum(t.count("ts=") for t in fast) > 300


def test_floor_division_by_multiplication_is_exact():
    """``_floor_div`` (the grid's divisions as multiplications) equals ``//`` over the range it is
    used on (an int32 tick times twice a grid of up to 480, plus a resolution), at the boundaries too."""
    from numba import njit

    from musicml.formats.midi.encode_kernels import _floor_div

    @njit
    def divide(xs, d):
        inv = 1.0 / d
        return np.array([_floor_div(x, d, inv) for x in xs])

    rng = np.random.default_rng(7)
    for d in (1, 2, 3, 7, 48, 960, 65_535, 2 * 32_767, 128 * 4 * 480):
        xs = np.concatenate([rng.integers(-(2**41), 2**41, 20_000), np.arange(-3 * d, 3 * d + 1),
                             np.array([2**41 - 1, -(2**41), (2**41 // d) * d, (2**41 // d) * d - 1])]).astype(np.int64)
        assert divide(xs, d).tolist() == [int(x) // d for x in xs]


def test_numbers_beyond_every_table():
    """300 tracks, a bar of 128/1 at grid 480 (positions past 200,000), a note of 120,000 steps, odd
    times: every number is written in full and decodes back."""
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 128, 1))
    score.tempos.append(Tempo(0, 97.0))
    score.tempos.append(Tempo(480 * 300, 41.0))
    for i in range(300):
        track = Track(f"t{i}", i % 128, i % 50 == 0)
        track.notes.append(Note(i * 1000 + 7, 480 * 250 if i == 3 else 30 + i, 20 + i % 100, 1 + i % 127))
        score.tracks.append(track)
    text = assert_round_trip(score, grid=480)
    assert "t299 " in text and ":120000" in text and "ts=128/1" in text
    assert max(int(tok[1:]) for tok in text.split() if tok.startswith("@")) > 200_000


def test_frozen_kernels_refuse_new_argument_types():
    """After ``warm_up`` a call with other argument types raises instead of compiling (what an
    ingestion worker relies on under its memory limit); encoding and the note table still work."""
    code = """
import numpy as np
from musicml.formats.midi import encode_kernels as k
from musicml.formats.midi.text import encode
from musicml.ingest.files import warm_up
from symusic import Score, Track, Note
warm_up()
s = Score(96); t = Track("a", 0, False); t.notes.append(Note(0, 96, 60, 90)); s.tracks.append(t)
assert encode(s).endswith("C4:4\\n"), encode(s)
from musicml.ingest.note_table import sorted_note_arrays
assert sorted_note_arrays(s)["onset"].tolist() == [0]
i32 = np.zeros(1, dtype=np.int32)
try:
    k.grid_notes(i32, i32, i32, i32, i32, 96, 4, np.zeros(256, dtype=np.int32), i32, 4, 4, 64, 1, 16, 1)
except TypeError:
    print("refused")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"


def test_a_file_beyond_the_workers_memory_is_rejected_and_the_rest_ingested(tmp_path):
    """A worker may write ``max_memory_bytes`` (RLIMIT_DATA): a file needing more is a rejected row
    naming it, the worker is replaced, and the file beside it is ingested."""
    raw = tmp_path / "raw"
    raw.mkdir()
    big = Score(24)
    track = Track("p", 0, False)
    i = np.arange(1_990_000, dtype=np.int32)  # within max_notes and max_quarters: only the memory refuses it
    track.notes = Note.from_numpy(i * 2, np.full_like(i, 6), (40 + i % 40).astype(np.int8), np.full(len(i), 90, np.int8))
    big.tracks.append(track)
    big.dump_midi(str(raw / "big.mid"))
    small = Score(24)
    small.tracks.append(Track("p", 0, False))
    small.tracks[0].notes.append(Note(0, 24, 64, 80))
    small.dump_midi(str(raw / "small.mid"))
    lake = Lake.from_env(tmp_path / "lake", raw)
    rows = {r["path"]: r for r in ingest(lake, IngestConfig(max_memory_bytes=450 * 2**20, workers=1))
            .files.iter_rows(named=True)}
    assert rows["small.mid"]["status"] == "ingested", rows["small.mid"]["reason"]
    assert rows["big.mid"]["status"] == "rejected"
    assert rows["big.mid"]["reason"].startswith("big.mid: ")
    assert "memory" in rows["big.mid"]["reason"]
    # without the limit the same file is ingested: it was the memory, not the file
    lake2 = Lake.from_env(tmp_path / "lake2", raw)
    status = dict(ingest(lake2, IngestConfig(workers=1)).files.select("path", "status").iter_rows())
    assert status == {"big.mid": "ingested", "small.mid": "ingested"}


@pytest.mark.parametrize("error", [MemoryError("std::bad_alloc"), RuntimeError("std::bad_alloc")])
def test_symusic_out_of_memory_is_reported_as_memory_not_corruption(monkeypatch, error):
    """C++'s bad_alloc in symusic's parser (a worker at its memory limit) is an out-of-memory row."""
    from types import SimpleNamespace

    from musicml.formats.midi import reader
    from musicml.ingest.files import CacheBatch

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(reader, "symusic", SimpleNamespace(Score=SimpleNamespace(from_midi=fail)))
    batch = CacheBatch(str(REPO / "unused-lake"), IngestConfig().to_dict())
    reply = batch.add(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60", "midi", "x.mid", "0" * 64)
    assert reply["status"] == "rejected" and batch.out_of_memory
    assert reply["reason"].startswith("x.mid: out of memory while reading"), reply["reason"]


@pytest.mark.parametrize("bins", [1, 8, 128])
def test_velocity_table_matches_the_rule(bins):
    table = miditext._velocity_table(bins)
    for v in range(-128, 128):
        assert table[v + 128] == miditext.velocity_bin_value(max(0, v), bins)
    assert table.dtype == np.int64


def test_tempo_ties_round_half_to_even_as_python_does():
    """62.5 and 187.5 QPM (960,000 and 320,000 us per quarter) are written as round() gives them."""
    score = Score(480)
    score.tempos.append(Tempo(0, 62.5))
    score.tempos.append(Tempo(1920, 187.5))
    score.tempos.append(Tempo(1920, 90.0))  # the last tempo at a step wins
    score.tempos.append(Tempo(3840, 187.5))
    track = Track("a", 0, False)
    track.notes.append(Note(3840 + 480, 480, 60, 90))
    score.tracks.append(track)
    assert score.tempos[0].mspq == 960_000 and score.tempos[3].mspq == 320_000
    text = encode(score)
    assert "tempo=62 " in text.replace("\n", " ") and "tempo=90" in text and "tempo=188" in text
    assert [round(60_000_000 / m) for m in (960_000, 320_000)] == [62, 188]
