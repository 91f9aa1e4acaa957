"""MIDI (a symusic Score) -> alphaTex for guitar-range parts.

Per track: onsets and ends are quantized to a 64th-note grid; notes starting together form a
chord; each chord lasts until the next onset (or its own end, then rests fill the gap), split at
bar lines with ties; lengths are written as alphaTex durations 1, 2, 4, 8, 16, 32, 64 with a
dot where that is exact (longer values become tied notes / several rests).

Strings and frets: each chord has candidate fingerings (one string per note, fret within
``0..frets``); a Viterbi pass over the chords picks the sequence with the least hand movement
(the hand is a 4-fret window: fretted notes inside it are free, moving it costs the shift) plus
a stretch penalty (fret span beyond 4) and a small preference for low positions. Notes outside the instrument's
range are moved by octaves into it; notes a chord cannot fit (more notes than strings) are
dropped. Drum tracks become percussion tracks (articulation numbers = GM drum notes).
The output is built as a tree and serialized, so it always parses without errors.
"""

from __future__ import annotations

import itertools

from musicml.formats.alphatex import instruments as I
from musicml.formats.alphatex.ast import (
    Bar,
    Beat,
    Ident,
    MetaData,
    Note,
    Property,
    Score,
    Staff,
    Track,
    Voice,
)
from musicml.formats.alphatex.serializer import serialize

GRID = 64  # grid units per whole note
# (grid units, duration value, dotted)
_PIECES = [
    (96, 1, True),
    (64, 1, False),
    (48, 2, True),
    (32, 2, False),
    (24, 4, True),
    (16, 4, False),
    (12, 8, True),
    (8, 8, False),
    (6, 16, True),
    (4, 16, False),
    (3, 32, True),
    (2, 32, False),
    (1, 64, False),
]
_MAX_CANDIDATES = 48


def split_length(units: int) -> list[tuple[int, bool]]:
    """A length in 64ths as alphaTex durations (value, dotted), longest first."""
    out = []
    while units > 0:
        for u, d, dot in _PIECES:
            if u <= units:
                out.append((d, dot))
                units -= u
                break
    return out


def _fingerings(pitches: list[int], tuning: tuple[int, ...], frets: int) -> list[tuple[int, ...]]:
    """All assignments of pitches to distinct strings (1-based), cheapest shapes first."""
    options = []
    for p in pitches:
        opts = [s + 1 for s, open_pitch in enumerate(tuning) if 0 <= p - open_pitch <= frets]
        options.append(opts)
    out = []
    for combo in itertools.product(*options):
        if len(set(combo)) == len(combo):
            out.append(combo)
    if len(out) > _MAX_CANDIDATES:
        out.sort(key=lambda c: _shape_cost(pitches, c, tuning))
        out = out[:_MAX_CANDIDATES]
    return out


def _frets(pitches, strings, tuning):
    return [p - tuning[s - 1] for p, s in zip(pitches, strings)]


def _shape_cost(pitches, strings, tuning) -> float:
    frets = _frets(pitches, strings, tuning)
    fretted = [f for f in frets if f > 0]
    if not fretted:
        return 0.0
    span = max(fretted) - min(fretted)
    return max(0, span - 3) * 4.0 + 0.05 * (sum(fretted) / len(fretted))


def assign_strings(chords: list[list[int]], tuning: tuple[int, ...], frets: int = 24):
    """Strings for each chord's pitches (the pitches may be trimmed to fit): a list of
    (pitches, strings) pairs, chosen by dynamic programming over candidate fingerings."""
    low, high = min(tuning), max(tuning) + frets
    prepared = []
    for chord in chords:
        ps = []
        for p in sorted(set(chord), reverse=True):
            while p < low:
                p += 12
            while p > high:
                p -= 12
            if p not in ps:
                ps.append(p)
        ps.sort(reverse=True)
        cands = _fingerings(ps, tuning, frets)
        while not cands and ps:
            ps = ps[:-1] if len(ps) > len(tuning) else ps[1:] if len(ps) > 1 else []
            cands = _fingerings(ps, tuning, frets) if ps else []
        prepared.append((ps, cands))
    # Viterbi over fingerings; the state carries the hand position (the fret under the index
    # finger, a 4-fret window): notes inside the window cost nothing, moving it costs the shift
    prev: list[tuple[float, float | None, list]] = [(0.0, None, [])]
    for ps, cands in prepared:
        if not cands:
            prev = [(c, pos, path + [()]) for c, pos, path in prev]
            continue
        nxt = []
        for cand in cands:
            fretted = [f for f in _frets(ps, cand, tuning) if f > 0]
            shape = _shape_cost(ps, cand, tuning)
            best = None
            for cost, ppos, path in prev:
                if not fretted:
                    move, npos = 0.0, ppos
                elif ppos is None:
                    move, npos = 0.0, float(min(fretted))
                else:
                    lo, hi = min(fretted), max(fretted)
                    if lo < ppos:
                        npos = float(lo)
                    elif hi > ppos + 3:
                        npos = float(max(lo, hi - 3))
                    else:
                        npos = ppos
                    move = abs(npos - ppos)
                total = cost + shape + move
                if best is None or total < best[0]:
                    best = (total, npos, path)
            nxt.append((best[0], best[1], best[2] + [cand]))
        nxt.sort(key=lambda x: x[0])
        prev = nxt[:_MAX_CANDIDATES]
    best_path = min(prev, key=lambda x: x[0])[2] if prev else []
    return [(ps if strings else [], strings) for (ps, _c), strings in zip(prepared, best_path)]


def _bar_starts(score, total_units: int, unit_ticks: float):
    """Bar boundaries (grid units) and time signatures from the score's time signatures."""
    sigs = sorted(
        (int(round(ts.time / unit_ticks)), ts.numerator, ts.denominator)
        for ts in score.time_signatures
    )
    sigs = [s for s in sigs if s[1] > 0 and s[2] in (1, 2, 4, 8, 16, 32, 64)] or [(0, 4, 4)]
    if sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    bars = []
    t = 0
    i = 0
    cur = sigs[0]
    while t < max(total_units, 1):
        while i + 1 < len(sigs) and sigs[i + 1][0] <= t:
            i += 1
            cur = sigs[i]
        length = GRID * cur[1] // cur[2] if GRID * cur[1] % cur[2] == 0 else GRID
        bars.append((t, length, cur[1], cur[2]))
        t += length
    return bars


def _beats_for(length: int, notes_for_piece) -> list[Beat]:
    out = []
    for k, (d, dot) in enumerate(split_length(length)):
        b = notes_for_piece(k)
        b.duration = d
        if dot:
            b.effects.append(Property("d"))
        out.append(b)
    return out


def from_score(score, *, tuning=None, frets: int = 24, max_tracks: int | None = None) -> str:
    """alphaTex text for a symusic Score (any time unit; ticks are read with its tpq)."""
    if getattr(score, "ttype", None) is not None and str(score.ttype).lower().find("tick") < 0:
        score = score.to("tick")
    tuning = tuple(tuning) if tuning is not None else I.STANDARD_TUNING
    tuning = tuple(I.parse_pitch(t) if isinstance(t, str) else int(t) for t in tuning)
    unit_ticks = score.ticks_per_quarter * 4 / GRID
    tracks = [t for t in score.tracks if len(t.notes)]
    if max_tracks is not None:
        tracks = tracks[:max_tracks]
    end_units = 0
    for t in tracks:
        for n in t.notes:
            end_units = max(end_units, int(round((n.time + n.duration) / unit_ticks)))
    bars = _bar_starts(score, end_units, unit_ticks)
    tempos = sorted((int(round(t.time / unit_ticks)), float(t.qpm)) for t in score.tempos)

    ast = Score()
    for ti, track in enumerate(tracks):
        drum = bool(track.is_drum)
        name = track.name or f"Track {ti + 1}"
        props = [Property("instrument", [Ident("percussion")] if drum else [int(track.program)])]
        tag = MetaData("track", [name], props)
        staff = Staff()
        if not drum:
            staff.metadata.append(MetaData("tuning", [Ident(I.pitch_name(p)) for p in tuning]))
        voice = Voice()
        staff.voices.append(voice)
        ast.tracks.append(Track(tag, [staff]))

        # chords: onset -> (pitches, end)
        chords: dict[int, list] = {}
        for n in track.notes:
            on = int(round(n.time / unit_ticks))
            end = max(on + 1, int(round((n.time + n.duration) / unit_ticks)))
            c = chords.setdefault(on, [[], on])
            c[0].append(int(n.pitch))
            c[1] = max(c[1], end)
        onsets = sorted(chords)
        if drum:
            placed = [([p for p in sorted(set(chords[o][0]))], None) for o in onsets]
        else:
            placed = assign_strings([chords[o][0] for o in onsets], tuning, frets)
        events = []  # (start, end, pitches, strings)
        for i, o in enumerate(onsets):
            end = chords[o][1]
            if i + 1 < len(onsets):
                end = min(end, onsets[i + 1])
            ps, strings = placed[i]
            if ps:
                events.append([o, end, ps, strings, False])

        ei = 0
        prev_tempo = None
        for bi, (bstart, blen, num, den) in enumerate(bars):
            bend = bstart + blen
            bar = Bar()
            if ti == 0:
                if bi == 0 or (num, den) != (bars[bi - 1][2], bars[bi - 1][3]):
                    bar.metadata.append(MetaData("ts", [num, den]))
                tempo = None
                for tt, q in tempos:
                    if tt < bend:
                        tempo = q
                if tempo is not None and tempo != prev_tempo:
                    bar.metadata.append(MetaData("tempo", [round(tempo, 3)]))
                    prev_tempo = tempo
            t = bstart
            while ei < len(events) and events[ei][0] < bend:
                s, e, ps, strings, tied_in = events[ei]
                s = max(s, t)
                if s > t:
                    bar.beats.extend(_beats_for(s - t, lambda k: Beat(rest=True)))
                seg_end = min(e, bend)

                def piece(k, ps=ps, strings=strings, tied=tied_in):
                    if k == 0 and not tied:
                        if strings is None:
                            return Beat(notes=[Note(p) for p in ps])
                        return Beat(
                            notes=[Note(p - tuning[st - 1], st) for p, st in zip(ps, strings)]
                        )
                    if strings is None:  # drums: no ties, rest for the remainder
                        return Beat(rest=True)
                    return Beat(notes=[Note(Ident("-"), st) for st in strings])

                bar.beats.extend(_beats_for(seg_end - s, piece))
                t = seg_end
                if e > bend:
                    events[ei] = [bend, e, ps, strings, True]
                    break
                ei += 1
            if t < bend and (bar.beats or ei < len(events)):
                bar.beats.extend(_beats_for(bend - t, lambda k: Beat(rest=True)))
            if not bar.beats:
                bar.beats.extend(_beats_for(blen, lambda k: Beat(rest=True)))
            voice.bars.append(bar)
    return serialize(ast)
