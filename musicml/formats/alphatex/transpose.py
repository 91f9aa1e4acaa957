"""Transposition for augmentation: shift every pitched note by k semitones and keep it playable.

Fretted notes stay on their string when ``fret + k`` is within ``0..frets`` (capo included);
otherwise they move to the free string of the same beat whose fret is closest to the old one.
Ties (``-.s``, ``{t}``) follow their note to its new string, trill frets are re-computed for the
new string. Pitch names and MIDI numbers on pitched staves shift (within 0..127); percussion is
left alone. Chord diagrams, key signatures and harmonics are display matters and stay as written.
A score that cannot be shifted gives None (never a half-shifted tree).
"""

from __future__ import annotations

import copy

from musicml.formats.alphatex import instruments as I
from musicml.formats.alphatex.ast import Ident, Note, Score
from musicml.formats.alphatex.semantics import FRETTED, PITCHED, staff_info


class _Unplayable(Exception):
    pass


def transpose(ast: Score, semitones: int, *, frets: int = 24) -> Score | None:
    """A transposed copy of ``ast``, or None when some note cannot be placed."""
    if semitones == 0:
        return copy.deepcopy(ast)
    new = copy.deepcopy(ast)
    try:
        for track in new.tracks:
            for staff in track.staves:
                info = staff_info(track, staff)
                if info.percussion:
                    continue
                for voice in staff.voices:
                    if info.kind == FRETTED:
                        _fretted_voice(voice, info, semitones, frets)
                    elif info.kind == PITCHED:
                        _pitched_voice(voice, semitones)
    except _Unplayable:
        return None
    return new


def _shift_name(v, k: int):
    p = I.parse_pitch(str(v))
    if p is None:
        return v
    q = p + k
    if not 0 <= q <= 127:
        raise _Unplayable
    name = I.pitch_name(q)
    return Ident(name) if isinstance(v, Ident) else name


def _pitched_voice(voice, k: int) -> None:
    for bar in voice.bars:
        for beat in bar.beats:
            for note in beat.notes or ():
                v = note.value
                if isinstance(v, int) and note.string is None:
                    if not 0 <= v + k <= 127:
                        raise _Unplayable
                    note.value = v + k
                elif isinstance(v, (Ident, str)) and str(v) not in ("x", "-"):
                    note.value = _shift_name(v, k)


def _is_tie(note: Note) -> bool:
    if isinstance(note.value, (Ident, str)) and str(note.value) == "-":
        return True
    return any(p.name in ("t", "-") for p in note.effects)


def _fretted_voice(voice, info, k: int, frets: int) -> None:
    tuning = info.tuning
    n = len(tuning)
    capo = info.capo
    max_fret = frets - capo
    string_map: dict[int, int] = {}  # old string -> string its last note moved to
    for bar in voice.bars:
        for beat in bar.beats:
            notes = beat.notes or []
            used: set[int] = set()
            pending: list[Note] = []
            placed: dict[int, int] = {}  # id(note) -> new string
            # first pass: notes that keep (or must keep) their string
            for note in notes:
                s = note.string
                if s is None or not 1 <= s <= n:
                    continue
                v = note.value
                if not isinstance(v, int):  # '-' tie or 'x' dead note: follow the string
                    target = string_map.get(s, s) if _is_tie(note) else s
                    placed[id(note)] = target
                    used.add(target)
                    continue
                if _is_tie(note) and s in string_map:
                    target = string_map[s]
                    fret = tuning[s - 1] + v + k - tuning[target - 1]
                    if not 0 <= fret <= max_fret:
                        raise _Unplayable
                    placed[id(note)] = target
                    used.add(target)
                    continue
                if 0 <= v + k <= max_fret and s not in used:
                    placed[id(note)] = s
                    used.add(s)
                else:
                    pending.append(note)
            # second pass: move the others to free strings
            for note in pending:
                s = note.string
                pitch = tuning[s - 1] + note.value + k
                best = None
                for t in range(1, n + 1):
                    if t in used:
                        continue
                    fret = pitch - tuning[t - 1]
                    if 0 <= fret <= max_fret:
                        cost = abs(fret - note.value)
                        if best is None or cost < best[0]:
                            best = (cost, t)
                if best is None:
                    raise _Unplayable
                placed[id(note)] = best[1]
                used.add(best[1])
            # apply
            for note in notes:
                s = note.string
                if s is None or id(note) not in placed:
                    continue
                t = placed[id(note)]
                if isinstance(note.value, int):
                    pitch = tuning[s - 1] + note.value + k
                    new_fret = pitch - tuning[t - 1]
                    for p in note.effects:
                        if p.name == "tr" and p.values and isinstance(p.values[0], int):
                            tf = tuning[s - 1] + p.values[0] + k - tuning[t - 1]
                            if not 0 <= tf <= max_fret:
                                raise _Unplayable
                            p.values[0] = tf
                    note.value = new_fret
                note.string = t
                string_map[s] = t
