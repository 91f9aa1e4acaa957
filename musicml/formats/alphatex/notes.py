"""alphaTex -> notes: onsets, durations and pitches as alphaTab plays them, as a symusic Score.

Timing: the default duration is a quarter and changes with ``:d`` and ``.d`` (it carries over
from beat to beat and bar to bar within a voice); ``{d}``/``{dd}`` dot a beat (x1.5, x1.75);
``{tu n}``/``{tu n m}`` (on a beat, a note or a ``:d {tu n}`` change, which then holds until
the next change) scale it by m/n (n=3 -> 2/3, 5,6,7 -> 4/n, 9,10,12 -> 8/n); ``*k`` repeats a
beat. Bars start where the previous bar's time signature ends (``\\ts``, default 4/4), so an
underfull voice leaves silence, as in alphaTab; a bar marked ``\\ac`` (anacrusis) lasts only
as long as its longest voice. Grace beats (``{gr}``) take no time: their notes sound a 32nd
before the beat. Ties (``-.s`` or a note with ``{t}``) extend the previous note on that string
(or of that pitch). Dead notes (``x``, ``{x}``) make no sound and give no note.

Pitch: fretted notes ``tuning[string-1] + fret + capo`` (string 1 = the highest string, the
first in ``\\tuning``; the default tuning follows the instrument as in alphaTab); pitch names
(``C#4``) as written; percussion articulations (numbers or names) as their GM drum note.
Tempo from ``\\tempo`` and beat ``{tempo n}``; velocity from ``{dy ...}`` (default f).
Repeats and jumps are not unrolled: notes come in written order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from musicml.formats.alphatex import instruments as I
from musicml.formats.alphatex.ast import Beat, Ident, Property, Score
from musicml.formats.alphatex.semantics import StaffInfo, staff_info

TPQ = 480
_WHOLE = 4 * TPQ
_TUPLET_DEN = {3: 2, 5: 4, 6: 4, 7: 4, 9: 8, 10: 8, 12: 8}
_GRACE = Fraction(1, 32)
VELOCITY = {
    "ppp": 16,
    "pp": 33,
    "p": 49,
    "mp": 64,
    "mf": 80,
    "f": 96,
    "ff": 112,
    "fff": 127,
    "pppp": 10,
    "ppppp": 6,
    "pppppp": 3,
    "ffff": 127,
    "fffff": 127,
    "ffffff": 127,
}


@dataclass
class NoteEvent:
    onset: Fraction  # in whole notes from the start
    duration: Fraction
    pitch: int
    velocity: int
    string: int | None = None


@dataclass
class BarSpan:
    """One bar of one voice: where it starts, how much it holds, what the time signature asks."""

    track: int
    staff: int
    voice: int
    index: int
    start: Fraction
    content: Fraction
    expected: Fraction
    anacrusis: bool
    empty: bool
    pos: tuple[int, int]


@dataclass
class Timeline:
    tracks: list[list[NoteEvent]] = field(default_factory=list)
    infos: list[StaffInfo | None] = field(default_factory=list)  # first staff of each track
    names: list[str] = field(default_factory=list)
    bars: list[BarSpan] = field(default_factory=list)
    tempos: list[tuple[Fraction, float]] = field(default_factory=list)
    time_signatures: list[tuple[Fraction, int, int]] = field(default_factory=list)


def _prop(props: list[Property], name: str) -> Property | None:
    for p in props:
        if p.name == name:
            return p
    return None


def tuplet_ratio(p: Property | None) -> Fraction:
    if p is None:
        return Fraction(1)
    nums = [v for v in p.values if isinstance(v, int) and v > 0]  # others are errors (semantics)
    if not nums:
        return Fraction(1)
    n = nums[0]
    if len(nums) >= 2:
        return Fraction(nums[1], n)
    return Fraction(_TUPLET_DEN.get(n, 1 << max(0, n.bit_length() - 1)), n)


def _duration_whole(d: int) -> Fraction:
    if d >= 1:
        return Fraction(1, d)
    if d in (-2, -4):
        return Fraction(-d)
    return Fraction(1, 4)


def beat_length(beat: Beat, current: int, tuplet: Fraction) -> Fraction:
    """Length of one beat (without its multiplier) in whole notes."""
    d = beat.duration if beat.duration is not None else current
    length = _duration_whole(d)
    effects = beat.effects
    note_effects = [p for n in beat.notes or () for p in n.effects]
    names = {p.name for p in effects} | {p.name for p in note_effects}
    if "dd" in names:
        length *= Fraction(7, 4)
    elif "d" in names:
        length *= Fraction(3, 2)
    tu = _prop(effects, "tu") or _prop(note_effects, "tu")
    if tu is not None:
        length *= tuplet_ratio(tu)
    else:
        length *= tuplet
    return length


def _masterbars(ast: Score):
    """Per bar index: (time signature, anacrusis flag, tempo or None) across all voices."""
    n = 0
    for track in ast.tracks:
        for staff in track.staves:
            for voice in staff.voices:
                n = max(n, len(voice.bars))
    ts: list = [None] * n
    ac = [False] * n
    tempo: list = [None] * n
    for track in ast.tracks:
        for staff in track.staves:
            for voice in staff.voices:
                for i, bar in enumerate(voice.bars):
                    for m in bar.metadata:
                        if m.tag == "ts" and ts[i] is None:
                            if len(m.values) == 2 and all(
                                isinstance(v, int) and 0 < v <= 255 for v in m.values  # MIDI's bytes
                            ):
                                ts[i] = (int(m.values[0]), int(m.values[1]))
                            elif m.values and str(m.values[0]).lower() == "common":
                                ts[i] = (4, 4)
                        elif m.tag == "ac":
                            ac[i] = True
                        elif m.tag == "tempo" and tempo[i] is None and m.values:
                            v = m.values[0]
                            if isinstance(v, (int, float)) and v > 0:
                                tempo[i] = float(v)
    cur = (4, 4)
    for i in range(n):
        if ts[i] is None:
            ts[i] = cur
        cur = ts[i]
    return ts, ac, tempo


def _score_tempo(ast: Score) -> float | None:
    m = ast.meta("tempo")  # very old alphaTex had \tempo among the score metadata
    if m and m.values and isinstance(m.values[0], (int, float)) and m.values[0] > 0:
        return float(m.values[0])
    return None


def timeline(ast: Score) -> Timeline:
    """Every note event of the score with its onset and duration, and the bar spans."""
    ts, ac, bar_tempo = _masterbars(ast)
    nbars = len(ts)

    # pass 1: content lengths (for anacrusis bars) - cheap duration-only walk
    content_max = [Fraction(0)] * nbars
    for track in ast.tracks:
        for staff in track.staves:
            for voice in staff.voices:
                current, tuplet = 4, Fraction(1)
                for i, bar in enumerate(voice.bars):
                    total = Fraction(0)
                    for beat in bar.beats:
                        dc = beat.duration_change
                        if dc is not None:
                            current = dc.value
                            tuplet = tuplet_ratio(_prop(dc.properties, "tu"))
                        if not beat.has_content:
                            continue
                        if beat.duration is not None:
                            current = beat.duration
                        if _prop(beat.effects, "gr"):
                            continue
                        total += beat_length(beat, current, tuplet) * (beat.multiplier or 1)
                    content_max[i] = max(content_max[i], total)
    starts = []
    t = Fraction(0)
    for i in range(nbars):
        starts.append(t)
        length = Fraction(ts[i][0], ts[i][1])
        if ac[i] and content_max[i] > 0:
            length = content_max[i]
        t += length

    tl = Timeline()
    first_tempo = bar_tempo[0] if nbars and bar_tempo[0] else (_score_tempo(ast) or 120.0)
    tl.tempos.append((Fraction(0), first_tempo))
    for i in range(1, nbars):
        if bar_tempo[i]:
            tl.tempos.append((starts[i], bar_tempo[i]))
    prev = None
    for i in range(nbars):
        if ts[i] != prev:
            tl.time_signatures.append((starts[i], ts[i][0], ts[i][1]))
            prev = ts[i]
    if not nbars:
        tl.time_signatures.append((Fraction(0), 4, 4))

    for ti, track in enumerate(ast.tracks):
        events: list[NoteEvent] = []
        tl.tracks.append(events)
        tl.names.append(track.name or f"Track {ti + 1}")
        tl.infos.append(staff_info(track, track.staves[0]) if track.staves else None)
        for si, staff in enumerate(track.staves):
            info = staff_info(track, staff)
            for vi, voice in enumerate(staff.voices):
                _walk_voice(voice, info, ti, si, vi, starts, ts, ac, events, tl)
    return tl


def _note_pitch(note, info: StaffInfo) -> int | None:
    v = note.value
    if info.percussion:
        if isinstance(v, int):
            p = I.articulation_output(v)  # an unknown id sounds as itself (an error when outside 0-127)
        else:
            name = str(v)
            a = info.articulations[name.lower()] if name.lower() in info.articulations else I.articulation_id(name)
            p = None if a is None else I.articulation_output(a)
    elif isinstance(v, int):
        if note.string is not None:
            if not info.tuning or not 1 <= note.string <= len(info.tuning):
                return None
            p = info.tuning[note.string - 1] + v + info.capo
        else:
            p = v
    elif isinstance(v, (Ident, str)):
        p = I.parse_pitch(str(v))
    else:
        return None
    return p if p is not None and 0 <= p <= 127 else None


def _walk_voice(voice, info: StaffInfo, ti, si, vi, starts, ts, ac, events, tl: Timeline) -> None:
    current, tuplet = 4, Fraction(1)
    velocity = VELOCITY["f"]
    last_on_string: dict[int, NoteEvent] = {}
    last_by_pitch: dict[int, NoteEvent] = {}
    for bi, bar in enumerate(voice.bars):
        start = starts[bi] if bi < len(starts) else Fraction(0)
        t = start
        for beat in bar.beats:
            dc = beat.duration_change
            if dc is not None:
                current = dc.value
                tuplet = tuplet_ratio(_prop(dc.properties, "tu"))
            if not beat.has_content:
                continue
            if beat.duration is not None:
                current = beat.duration
            dy = _prop(beat.effects, "dy")
            if dy and dy.values:
                velocity = VELOCITY.get(str(dy.values[0]).lower(), velocity)
            tp = _prop(beat.effects, "tempo")
            if tp and tp.values and isinstance(tp.values[0], (int, float)) and tp.values[0] > 0:
                tl.tempos.append((t, float(tp.values[0])))
            grace = _prop(beat.effects, "gr") is not None
            length = beat_length(beat, current, tuplet)
            for _ in range(beat.multiplier or 1):
                if grace:
                    onset = max(start, t - _GRACE)
                    dur = t - onset if t > onset else _GRACE
                else:
                    onset, dur = t, length
                if beat.notes and not beat.rest:
                    for note in beat.notes:
                        _emit(
                            note,
                            beat,
                            onset,
                            dur,
                            velocity,
                            info,
                            events,
                            last_on_string,
                            last_by_pitch,
                        )
                if not grace:
                    t += length
        expected = Fraction(ts[bi][0], ts[bi][1]) if bi < len(ts) else Fraction(1)
        tl.bars.append(
            BarSpan(
                ti,
                si,
                vi,
                bi,
                start,
                t - start,
                expected,
                bi < len(ac) and ac[bi],
                not bar.beats,
                bar.pos,
            )
        )


def _emit(note, beat, onset, dur, velocity, info, events, last_on_string, last_by_pitch) -> None:
    names = {p.name for p in note.effects}
    v = note.value
    is_tie_value = isinstance(v, (Ident, str)) and str(v) == "-"
    if (isinstance(v, (Ident, str)) and str(v) == "x" and not info.percussion) or "x" in names:
        return  # dead note: no pitch
    if is_tie_value or "t" in names or "-" in names:
        target = None
        if note.string is not None:
            target = last_on_string.get(note.string)
        if target is None and not is_tie_value:
            p = _note_pitch(note, info)
            if p is not None:
                target = last_by_pitch.get(p)
        if target is not None and target.onset + target.duration >= onset:
            target.duration = onset + dur - target.onset
            return
        if is_tie_value:
            return
    pitch = _note_pitch(note, info)
    if pitch is None:
        return
    vel = velocity
    if "g" in names:
        vel = max(1, vel - 30)
    elif "ac" in names or "hac" in names:
        vel = min(127, vel + 16)
    ev = NoteEvent(onset, dur, pitch, vel, note.string)
    events.append(ev)
    if note.string is not None:
        last_on_string[note.string] = ev
    last_by_pitch[pitch] = ev


def _ticks(x: Fraction) -> int:
    return int(round(x * _WHOLE))


def to_score(ast: Score):
    """The notes of an alphaTex tree as a ``symusic.Score`` (ticks, tpq 480): one track per
    alphaTex track, program from ``instrument``, percussion tracks as drums."""
    import numpy as np
    import symusic

    tl = timeline(ast)
    score = symusic.Score(TPQ)
    seen = set()
    for t, qpm in sorted(tl.tempos, key=lambda x: x[0]):
        tick = _ticks(t)
        if tick in seen:
            continue
        seen.add(tick)
        score.tempos.append(symusic.Tempo(tick, qpm))
    for t, num, den in tl.time_signatures:
        score.time_signatures.append(symusic.TimeSignature(_ticks(t), num, den))
    for events, info, name in zip(tl.tracks, tl.infos, tl.names):
        drum = bool(info and info.percussion)
        program = 0 if drum or info is None else info.program
        track = symusic.Track(name=name, program=program, is_drum=drum)
        if events:
            events = sorted(events, key=lambda e: (e.onset, e.pitch))
            time = np.fromiter((_ticks(e.onset) for e in events), dtype=np.int32, count=len(events))
            end = np.fromiter(
                (_ticks(e.onset + e.duration) for e in events), dtype=np.int32, count=len(events)
            )
            dur = np.maximum(end - time, 1).astype(np.int32)
            pitch = np.fromiter((e.pitch for e in events), dtype=np.int8, count=len(events))
            vel = np.fromiter((e.velocity for e in events), dtype=np.int8, count=len(events))
            track.notes = symusic.Note.from_numpy(time, dur, pitch, vel)
        score.tracks.append(track)
    return score
