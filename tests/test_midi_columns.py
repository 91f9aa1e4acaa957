"""Note columns made once per score: the note table, the piece statistics and the MIDI text made
from them equal what each made on its own (symusic's resample, per-track numpy), on real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import symusic
from conftest import CORPORA, derived_corpus
from symusic import Note, Score, Tempo, TimeSignature, Track
from test_miditext import assert_round_trip

from musicml.formats import get_format
from musicml.formats.midi import text as miditext
from musicml.formats.midi.columns import _sort_kind, note_columns, sort_keys
from musicml.formats.midi.format import MidiPiece, midi_title, path_stem
from musicml.formats.midi.text import encode
from musicml.ingest.note_table import (
    NOTE_PART_SCHEMA,
    NOTE_SCHEMA,
    _note_arrays_resampled,
    note_arrays,
    notes_frame_from_arrays,
    notes_part_table,
    piece_stats,
    sorted_note_arrays,
)

_D = derived_corpus()


def _real_scores() -> list[Score]:
    """music21-derived MIDI (always there) and, when present, shared edge-case MIDI files."""
    scores = [symusic.Score(p) for p in (*_D.midi, *_D.multitrack, _D.band)]
    edge = CORPORA / "midi" / "edge" / "music21"
    scores += [symusic.Score(p) for p in sorted(edge.glob("*.mid"))[:8]] if edge.is_dir() else []
    return scores


def _equal_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("tpq", [None, 24, 97, 7, 960])
def test_note_arrays_equal_symusic_resample(tpq) -> None:
    """Rounding as symusic's resample (std::round, half away from zero) at every resolution."""
    for score in _real_scores():
        s = score if tpq is None else score.resample(tpq=tpq)
        expected = _note_arrays_resampled(s)
        assert _equal_arrays(note_arrays(s), expected)
        assert _equal_arrays(note_arrays(s, note_columns(s)), expected)


def test_note_arrays_of_a_score_not_in_ticks() -> None:
    score = symusic.Score(_D.band)
    q = score.to("quarter")
    assert _equal_arrays(note_arrays(q), _note_arrays_resampled(q))
    assert note_columns(q).tpq == score.tpq and len(note_columns(q).time) == score.note_num()


def test_note_arrays_overflow_is_refused_as_symusic_does() -> None:
    s = Score(1)
    t = Track("long", 0, False)
    t.notes.append(Note(2**30, 10, 60, 80))
    s.tracks.append(t)
    with pytest.raises(OverflowError, match="out of int32 range"):
        s.resample(tpq=24, min_dur=1)
    with pytest.raises(OverflowError, match="out of int32 range"):
        note_arrays(s)


def test_note_arrays_round_negative_times_half_away_from_zero() -> None:
    """Times before 0 (a shifted score) take the sign-aware rounding, as symusic's resample."""
    s = Score(480)
    t = Track("early", 0, False)
    for time, duration in ((-250, 10), (-10, 250), (-9, 9), (250, 30), (0, 0)):  # -12.5, 12.5, 0.5 steps
        t.notes.append(Note(time, duration, 60, 80))
    s.tracks.append(t)
    assert _equal_arrays(note_arrays(s), _note_arrays_resampled(s))
    assert note_arrays(s)["onset"].tolist() == [-13, -1, 0, 13, 0]


def test_columns_carry_the_track_names_for_the_title() -> None:
    for score in _real_scores():
        c = note_columns(score)
        assert c.names == tuple(t.name for t in score.tracks)
        assert midi_title(score, "dir/song.mid", c) == midi_title(score, "dir/song.mid")
    band = symusic.Score(_D.band)
    assert midi_title(band, "a/b.c.mid").startswith("b.c (")


@pytest.mark.parametrize("source", ["a.mid", "dir/a.mid", "a", ".mid", "..mid", "a.", "a..", "x/.", "x/", "", "/",
                                    "a/b/c.tar.gz", ".", "..", "a/..", "//a.mid", "a//b.mid", "./a.mid", "d.d/x"])
def test_path_stem_is_paths_stem(source) -> None:
    assert path_stem(source) == Path(source).stem


def test_piece_stats_from_columns() -> None:
    for score in _real_scores():
        assert piece_stats(score, note_columns(score)) == piece_stats(score)
    empty = Score(480)
    empty.tracks.append(Track("silence", 0, False))
    assert piece_stats(empty, note_columns(empty)) == piece_stats(empty)
    assert piece_stats(empty)["n_tracks"] == 0 and piece_stats(empty)["min_pitch"] is None
    drums = Score(480)  # the pitch range counts pitched tracks only: none here
    kit = Track("kit", 0, True)
    kit.notes.append(Note(0, 120, 36, 100))
    drums.tracks.append(kit)
    assert piece_stats(drums, note_columns(drums)) == piece_stats(drums)
    assert piece_stats(drums)["min_pitch"] is None and piece_stats(drums)["n_tracks"] == 1
    bass = Track("bass", 33, False)
    for pitch in (40, 28, 52):
        bass.notes.append(Note(0, 120, pitch, 90))
    drums.tracks.append(bass)
    stats = piece_stats(drums, note_columns(drums))
    assert stats == piece_stats(drums) and (stats["min_pitch"], stats["max_pitch"]) == (28, 52)


def test_sort_keys_sorts_as_numpy_whichever_sort_it_takes() -> None:
    rng = np.random.default_rng(1)
    key = np.concatenate([np.sort(rng.integers(0, 1 << 50, n)) for n in (500, 3, 0, 900)])
    expected = np.sort(key)
    sort_keys(key)
    assert np.array_equal(key, expected) and _sort_kind() in ("stable", "quicksort")


def test_columns_of_empty_and_mixed_tracks() -> None:
    assert len(note_columns(Score(96)).time) == 0 and note_columns(Score(96)).n_tracks == 0
    s = Score(96)
    s.tracks.append(Track("empty", 5, False))
    drums = Track("drums", 0, True)
    drums.notes.append(Note(0, 24, 36, 100))  # a 16th note at 96 ticks per quarter
    s.tracks.append(drums)
    c = note_columns(s)
    assert c.counts.tolist() == [0, 1] and c.track.tolist() == [1] and c.drums.tolist() == [False, True]
    assert c.programs.tolist() == [5, 0]
    assert encode(s) == encode(s, columns=c) == "MIDI grid=4 vel=8\ntrack t0 program=0 drum name=drums\nbar ts=4/4 tempo=120\nt0 @0 v104 36:1\n"


def test_midi_reader_hands_its_columns_on(tmp_path) -> None:
    data = _D.band.read_bytes()
    piece = get_format("midi").read(data, "band.mid").pieces[0]
    assert isinstance(piece, MidiPiece) and piece.columns is not None
    assert piece == get_format("midi").read(data, "band.mid").pieces[0]  # columns are not compared
    assert piece.text == encode(piece.score)
    assert _equal_arrays(note_arrays(piece.score, piece.columns), note_arrays(piece.score))


def test_notes_part_table_is_the_note_table_of_its_pieces() -> None:
    """A cache batch's part: each piece's sorted notes under its id, in ``NOTE_PART_SCHEMA``'s types
    (``NOTE_SCHEMA``'s, times as int32), the ids a dictionary (pieces without notes among them)."""
    import pyarrow as pa

    scores = _real_scores()
    parts = [sorted_note_arrays(s) for s in scores]
    unsorted = [note_arrays(s) for s in scores]
    parts.append({k: v[:0] for k, v in parts[0].items()})  # a piece without notes
    unsorted.append(parts[-1])
    ids = [f"p{i:02d}" for i in range(len(parts))]
    for chunk in (slice(None), slice(0, 1), slice(-1, None), slice(0, 3), slice(0, 0)):
        table = notes_part_table(ids[chunk], parts[chunk])
        assert pa.types.is_dictionary(table["piece_id"].type) and table.column_names == list(NOTE_SCHEMA)
        got = pl.from_arrow(table).cast({"piece_id": pl.String})
        assert got.schema == pl.Schema(NOTE_PART_SCHEMA)
        got = got.cast(NOTE_SCHEMA)
        want = notes_frame_from_arrays(list(zip(ids[chunk], unsorted[chunk])))  # sorted by id, onset, pitch, track
        assert got.equals(want)


def test_encoder_rare_tokens() -> None:
    """Tokens outside the encoder's table (track 256+, positions 4096+, durations 128+ steps)
    still round-trip exactly."""
    many = Score(480)
    many.time_signatures.append(TimeSignature(0, 16, 4))
    many.tempos.append(Tempo(0, qpm=100))
    for i in range(260):
        t = Track(f"t{i}", i % 128, False)
        t.notes.append(Note(i * 7, 480 * 40, 40 + i % 50, 20 + i % 100))
        many.tracks.append(t)
    text = assert_round_trip(many, grid=480, bins=16)
    assert "\nt259 " in text and " @1813 " in text and ":19200" in text


def test_encoder_without_the_packed_sort_key(monkeypatch) -> None:
    """Notes whose sort key does not fit one int64 are sorted by lexsort: the same text."""
    scores = _real_scores()
    texts = [encode(s, grid=12, max_tracks=2) for s in scores]
    monkeypatch.setattr(miditext, "_PACKED_KEY_BITS", 0)
    assert [encode(s, grid=12, max_tracks=2) for s in scores] == texts


def _columns_equal(a, b) -> bool:
    fields = ("time", "duration", "pitch", "velocity", "track", "counts", "programs", "drums")
    return a.tpq == b.tpq and a.names == b.names and all(
        getattr(a, f).dtype == getattr(b, f).dtype and np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


def test_columns_from_symusics_note_bytes_equal_its_numpy(monkeypatch) -> None:
    """The columns read from the notes' pickled bytes are those of ``numpy()`` (the fallback), on
    real music, empty tracks and every field at its limits; this symusic's layout is the one read."""
    from musicml.formats.midi import columns as columns_module

    assert columns_module._states_readable()
    edge = Score(480)
    for name, notes in (("empty", []), ("limits", [(2**31 - 1, 2**31 - 1, 127, 127), (-(2**31), 0, -128, -128)]),
                        ("one", [(5, 7, 60, 1)])):
        track = Track(name, 3, name == "one")
        for n in notes:
            track.notes.append(Note(*n))
        edge.tracks.append(track)
    scores = [*_real_scores(), edge, Score(96)]
    fast = [note_columns(s) for s in scores]
    monkeypatch.setattr(columns_module, "_states_readable", lambda: False)
    slow = [note_columns(s) for s in scores]
    assert all(_columns_equal(a, b) for a, b in zip(fast, slow, strict=True))
    assert sum(len(c.time) for c in fast) > 5_000  # real music, not only the edge cases


def test_columns_fall_back_where_the_note_bytes_do_not_match() -> None:
    """A note list whose bytes do not have the expected length is read by ``numpy()``."""
    from musicml.formats.midi.columns import _from_numpy, _from_states

    class Odd:  # a note list pickled in some other layout
        def __init__(self, notes):
            self.notes = notes

        def __getstate__(self):
            return self.notes.__getstate__() + b"\0"

        def __len__(self):
            return len(self.notes)

        def numpy(self):
            return self.notes.numpy()

    track = Track("x", 0, False)
    track.notes.append(Note(0, 1, 60, 90))
    assert _from_states([Odd(track.notes)]) is None
    assert _from_states([track.notes]) is not None
    assert [a.tolist() for a in _from_numpy([Odd(track.notes)])] == [[0], [1], [60], [90], [1]]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_columns_are_writable_contiguous_arrays(n) -> None:
    """As the compiled kernels were compiled for (a read-only view would be another type)."""
    s = Score(96)
    track = Track("x", 0, False)
    for i in range(n):
        track.notes.append(Note(i, 1, 60, 90))
    s.tracks.append(track)
    c = note_columns(s)
    for a in (c.time, c.duration, c.pitch, c.velocity, c.track):
        assert a.flags.writeable and a.flags.c_contiguous
