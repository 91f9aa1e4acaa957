"""Piano rolls: shapes, agreement with the MIDI text quantization, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import derived_corpus
from symusic import Note, Score, Track

from musicml.formats.midi.text import decode, encode
from musicml.pianorolls.grid import from_pianoroll, to_pianoroll


def real(i: int = 0) -> Score:
    """A real multi-voice tune (music21's corpus through symusic); the first has three voices."""
    return Score(str(derived_corpus().multitrack[i]))


def test_shape_and_values_on_a_real_score():
    score = real()
    roll = to_pianoroll(score)
    assert roll.dtype == np.uint8 and roll.shape[0] == 128
    assert set(np.unique(roll)) == {0, 1}
    per_track = to_pianoroll(score, merge_tracks=False, velocity=True)
    assert len(score.tracks) == 3 and per_track.shape == (3, 128, roll.shape[1])
    assert 1 <= per_track[per_track > 0].min() and per_track.max() <= 127
    assert ((per_track.max(axis=0) > 0) == (roll > 0)).all()


def test_agrees_with_miditext_quantization():
    score = real(1)
    roll = to_pianoroll(score)
    via_text = decode(encode(score))  # same grid rules
    expect = np.zeros_like(roll)
    f = via_text.tpq // 4
    for tr in via_text.tracks:
        for n in tr.notes:
            expect[n.pitch, n.time // f : (n.time + n.duration) // f] = 1
    assert (roll == expect).all()


def test_round_trip_binary_and_velocity():
    score = real(0)
    roll = to_pianoroll(score)
    back = from_pianoroll(roll, tempo=90, program=5)
    assert back.tracks[0].program == 5 and round(back.tempos[0].qpm) == 90
    assert (to_pianoroll(back) == roll).all()
    vroll = to_pianoroll(score, merge_tracks=False, velocity=True)
    vback = from_pianoroll(vroll, program=[0, 1, 2])
    assert [t.program for t in vback.tracks] == [0, 1, 2]
    assert (to_pianoroll(vback, merge_tracks=False, velocity=True) == vroll).all()


def test_notes_from_a_hand_made_roll():
    roll = np.zeros((128, 8), dtype=bool)
    roll[60, 0:4] = True
    roll[64, 2:3] = True
    roll[67, 7] = True
    s = from_pianoroll(roll, grid=4, velocity=100)
    assert s.tpq == 480
    notes = [(n.time, n.duration, n.pitch, n.velocity) for n in s.tracks[0].notes]
    assert notes == [(0, 480, 60, 100), (240, 120, 64, 100), (840, 120, 67, 100)]
    # velocity rolls: a change of value starts a new note
    vroll = np.zeros((128, 4), dtype=np.uint8)
    vroll[60] = [90, 90, 40, 0]
    s = from_pianoroll(vroll)
    assert [(n.time, n.duration, n.velocity) for n in s.tracks[0].notes] == [
        (0, 240, 90),
        (240, 120, 40),
    ]


def test_drums_left_out_unless_asked():
    s = Score(480)
    piano, drums = Track("p", 0, False), Track("d", 0, True)
    piano.notes.append(Note(0, 480, 60, 80))
    drums.notes.append(Note(960, 120, 36, 100))
    s.tracks.extend([piano, drums])
    assert to_pianoroll(s).shape == (128, 4)
    with_drums = to_pianoroll(s, drums=True)
    assert with_drums.shape == (128, 9) and with_drums[36, 8] == 1
    assert to_pianoroll(s, length=16).shape == (128, 16)
    assert to_pianoroll(s, length=2).shape == (128, 2)


def test_empty_and_bad_input():
    assert to_pianoroll(Score(480)).shape == (128, 0)
    assert to_pianoroll(Score(480), merge_tracks=False).shape == (0, 128, 0)
    assert from_pianoroll(np.zeros((128, 0))).note_num() == 0
    with pytest.raises(ValueError):
        from_pianoroll(np.zeros((12, 5)))
