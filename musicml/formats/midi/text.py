"""MIDI as text: a compact, documented, human-readable serialization of a ``symusic.Score``.

The text form lets one BPE tokenizer and one GPT model MIDI beside alphaTex and ABC. It is
quantized to a grid, written bar by bar, and every token is separated by whitespace so that a
byte-level BPE learns each token (and frequent pairs of tokens) as units.

Example (POP909-like, grid 4 = sixteenth notes, 2/4 time)::

    MIDI grid=4 vel=8
    track t0 program=0 name=MELODY
    track t1 program=0 name=PIANO
    track t2 program=0 drum
    bar ts=2/4 tempo=90
    t1 @0 v56 C3:8 G3:8 @4 v72 E4:2
    t2 @0 v104 36:1 42:1 @4 38:1
    bar @4 tempo=92
    t0 @0 v88 E5:2 @2 G5:2 @4 A5:4
    bar
    bar ts=3/4

Grammar (tokens are separated by any whitespace; the newlines are only for people)::

    document := header bar*
    header   := "MIDI" option* track*
    option   := "grid=" INT            grid steps per quarter note (1..480, default 4)
              | "vel=" INT             velocity bins used by the encoder (informational)
    track    := "track" TID attr*      declares a track; TID is "t" INT (t0, t1, ...)
    attr     := "program=" INT         General MIDI program 0..127 (default 0)
              | "drum"                 a percussion track (MIDI channel 10)
              | "name=" WORD           track name ([A-Za-z0-9_.+#-], at most 24 characters)
    bar      := "bar" event* section*
    event    := "ts=" INT "/" INT      time signature starting at this bar (first bar only or
                                       on change; a bar lasts num*4*grid/den grid steps)
              | "@" INT                position inside the bar in grid steps, from 0
              | "tempo=" NUM           tempo (quarter notes per minute) at the current position
    section  := TID item*              the notes of one track in this bar
    item     := "@" INT                position of the following notes (a chord shares one)
              | "v" INT                velocity 1..127 of the following notes of this track
              | PITCH ":" INT          a note: pitch and duration in grid steps (>= 1)
    PITCH    := a note name C-1..G9 with sharps (C4 = 60, A4 = 69; flats are also read) or
                a MIDI number 0..127 (the encoder writes numbers for drum tracks)

Semantics. Bar ``k`` of a time-signature segment starting at grid step ``S`` starts at
``S + (k * num * 4 * grid) // den``; a note's onset is its bar's start plus its position. A
duration may run past the end of the bar. Velocity is written when it changes, and always
for the first note of a section, so every line stands on its own; a decoder keeps the last
velocity of a track (64 before any). Empty bars are a bare ``bar``.

Encoding rules (what "quantized to the grid" means):

* onset ``q = floor(t * grid / tpq + 1/2)``, end likewise, duration ``max(1, q_end - q)``;
* a note with the same track, onset and pitch as another is merged into one (longest
  duration, loudest velocity); notes before time 0 or outside pitches 0..127 (for example
  after an overflowing transposition) are left out;
* velocity ``v`` goes to bin ``v * bins // 128`` and is written as the bin's centre
  ``(2 * bin + 1) * 64 // bins`` (clamped to 1..127): with 8 bins 8, 24, ..., 120;
* tempo is rounded to whole QPM; events at the same grid step keep the last one, repeats of
  the current tempo are dropped; a tempo of 120 is written at the start when the score has
  none there (the MIDI default);
* a time signature change that falls inside a bar moves to the next bar line; signatures
  whose bar is shorter than one grid step, or whose denominator is not a power of two, are
  ignored; the first bar always states its signature (4/4 when the score has none);
* tracks without notes are left out; with ``max_tracks`` the tracks with the most notes are
  kept, in their original order;
* the text ends with the bar holding the last onset; tempo and time-signature events after
  it are dropped, as are key signatures, controllers, pedals, pitch bends and lyrics.

``decode`` is tolerant by default: a language model's output with junk tokens, a truncated
last token or a note outside any track decodes to the valid parts. ``strict=True`` raises
:class:`MidiTextError` naming the line and column of the first problem, and ``validate``
lists every problem as ``"line:col: message"``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import symusic
from symusic import Note, Score, Tempo, TimeSignature, Track

from musicml.formats.midi import encode_kernels as kernels
from musicml.formats.midi.columns import NoteColumns, note_columns, sort_keys

__all__ = [
    "MidiTextError",
    "decode",
    "encode",
    "quantize",
    "read_grid",
    "validate",
    "problems",
    "pitch_name",
    "velocity_bin_value",
    "DEFAULT_TEMPO",
]

DEFAULT_TEMPO = 120
DEFAULT_VELOCITY = 64
MAX_STEPS = 1_000_000  # largest position / duration (grid steps) the decoder accepts
MAX_GRID = 480
_NAME_RE = re.compile(r"[^A-Za-z0-9_.+#\-]+")

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PITCH_NAMES = [f"{_NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in range(128)]
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": None, "Fb": None}


def _pitch_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for p in range(128):
        table[str(p)] = p
        table[_PITCH_NAMES[p]] = p
    # flats (Db4 = C#4) and the enharmonic spellings E#, B#, Cb, Fb
    for octave in range(-1, 10):
        for i, name in enumerate(_NOTE_NAMES):
            p = (octave + 1) * 12 + i
            if "#" in name:
                flat = _NOTE_NAMES[(i + 1) % 12] + "b"
                if 0 <= p < 128:
                    table[f"{flat}{octave}"] = p
        for name, delta in (("E#", 5), ("B#", 12), ("Cb", -1), ("Fb", 4)):
            p = (octave + 1) * 12 + delta
            if 0 <= p < 128:
                table[f"{name}{octave}"] = p
    return table


_PITCHES = _pitch_table()


class MidiTextError(ValueError):
    """A problem in MIDI text, with the 1-based line and column of the offending token."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(f"{line}:{col}: {message}")
        self.message = message
        self.line = line
        self.col = col


def pitch_name(pitch: int) -> str:
    """Name of a MIDI pitch with sharps, C4 = 60 (``pitch_name(61) == "C#4"``)."""
    return _PITCH_NAMES[pitch]


def velocity_bin_value(velocity: int, bins: int = 8) -> int:
    """The velocity written for ``velocity`` with ``bins`` bins (the bin's centre)."""
    b = min(bins - 1, max(0, int(velocity)) * bins // 128)
    return min(127, max(1, (2 * b + 1) * 64 // bins))


def _round_steps(ticks: np.ndarray, tpq: int, grid: int) -> np.ndarray:
    """floor(t * grid / tpq + 1/2) in exact integer arithmetic."""
    out = np.asarray(ticks, dtype=np.int64) * (2 * grid)
    out += tpq
    out //= 2 * tpq
    return out


def _round_step(tick: int, tpq: int, grid: int) -> int:
    """:func:`_round_steps` of one tick."""
    return (2 * int(tick) * grid + tpq) // (2 * tpq)


@lru_cache(maxsize=4096)
def _sanitize_name(name: str) -> str:
    return _NAME_RE.sub("_", name.strip())[:24].strip("_")  # cut first: a cut may end in "_"


def _valid_ts(num: int, den: int, grid: int) -> bool:
    return 1 <= num <= 128 and 1 <= den <= 128 and den & (den - 1) == 0 and num * 4 * grid >= den


def _quantized_notes(track, tpq: int, grid: int, velocity_bins: int):
    """(onset, duration, pitch, velocity) int64 arrays of one track, quantized and merged."""
    a = track.notes.numpy()
    if len(a["time"]) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, e
    time = a["time"].astype(np.int64)
    end = time + np.maximum(a["duration"].astype(np.int64), 0)
    on = _round_steps(time, tpq, grid)
    dur = np.maximum(_round_steps(end, tpq, grid) - on, 1)
    pitch = a["pitch"].astype(np.int64)
    vel = np.clip(a["velocity"].astype(np.int64), 0, 127)
    keep = (on >= 0) & (pitch >= 0) & (pitch <= 127)
    on, dur, pitch, vel = on[keep], dur[keep], pitch[keep], vel[keep]
    order = np.lexsort((pitch, on))
    on, dur, pitch, vel = on[order], dur[order], pitch[order], vel[order]
    if len(on) > 1:
        same = (on[1:] == on[:-1]) & (pitch[1:] == pitch[:-1])
        if same.any():
            starts = np.flatnonzero(np.concatenate(([True], ~same)))
            dur = np.maximum.reduceat(dur, starts)
            vel = np.maximum.reduceat(vel, starts)
            on, pitch = on[starts], pitch[starts]
    bins = np.minimum(velocity_bins - 1, vel * velocity_bins // 128)
    vel = np.clip((2 * bins + 1) * 64 // velocity_bins, 1, 127)
    return on, dur, pitch, vel


@lru_cache(maxsize=128)
def _velocity_table(bins: int) -> np.ndarray:
    """The velocity written for each stored velocity ``v`` (-128..127) at index ``v + 128``."""
    v = np.clip(np.arange(-128, 128, dtype=np.int64), 0, 127)
    b = np.minimum(bins - 1, v * bins // 128)
    return np.clip((2 * b + 1) * 64 // bins, 1, 127)


def encode(
    score: Score,
    *,
    grid: int = 4,
    velocity_bins: int = 8,
    max_tracks: int | None = None,
    names: bool = True,
    columns: NoteColumns | None = None,
) -> str:
    """Serialize ``score`` as MIDI text (see the module docstring for the format).

    ``grid`` is the number of grid steps per quarter note (4 = sixteenths, 12 = sixteenth
    triplets), ``velocity_bins`` the number of velocity levels (1..128), ``max_tracks`` keeps
    only the tracks with the most notes, ``names`` writes sanitized track names. ``columns``:
    the score's :func:`~musicml.formats.midi.columns.note_columns` where the caller has them.
    """
    if not 1 <= grid <= MAX_GRID:
        raise ValueError(f"grid must be in 1..{MAX_GRID}, got {grid}")
    if not 1 <= velocity_bins <= 128:
        raise ValueError(f"velocity_bins must be in 1..128, got {velocity_bins}")
    if score.ttype != symusic.TimeUnit.tick:
        score = score.to("tick")
    c = note_columns(score) if columns is None else columns
    tpq = c.tpq
    header = f"MIDI grid={grid} vel={velocity_bins}"
    if not len(c.time):
        return header + "\n"
    # the layout in one compiled call (the general path below does the same step by step): the usual
    # case, every track with notes kept and the key packed
    ts = score.time_signatures.numpy()
    layout = kernels.grid_keys(c.time, c.duration, c.pitch, c.velocity, c.track, c.n_tracks, tpq, grid,
                               _velocity_table(velocity_bins), ts["time"], ts["numerator"], ts["denominator"],
                               _PACKED_KEY_BITS if _ONE_CALL else -1)
    status, idx_bits, track_bits, pos_bits, bounds, ts_bar, ts_num, ts_den, dur, vel, key, tids, n_bars, top = layout
    if status == 1:
        return header + "\n"
    if status == 0:
        ids = tids.tolist()
        keep = [t for t, i in enumerate(ids) if i >= 0]
        if max_tracks is None or len(keep) <= max_tracks:
            sort_keys(key)  # the keys are distinct (the index is in their low bits): any sort is stable
            t = score.tempos.numpy()
            body = kernels.write_notes(key, idx_bits, track_bits, pos_bits, key, key, key, key, dur, vel, tids,
                                       c.drums, ts_bar, ts_num, ts_den, t["time"], t["mspq"], tpq, grid, bounds,
                                       DEFAULT_TEMPO, kernels.PITCH_NAME_BYTES, kernels.PITCH_NAME_LENS, n_bars, top)
            return "\n".join([header, *_declarations(score, c, keep, names)]) + body.tobytes().decode("ascii") + "\n"

    # bars up to the last onset of any note (the bars up to the last kept onset are a prefix)
    last = _round_step(int(c.time.max()), tpq, grid)
    if last < 0:
        return header + "\n"
    seg_start, seg_num, seg_den = kernels.segments(ts["time"], ts["numerator"], ts["denominator"], tpq, grid)
    bounds, ts_bar, ts_num, ts_den = kernels.bar_bounds(seg_start, seg_num, seg_den, grid, last)
    bar_starts = bounds[:-1]
    n_tracks = c.n_tracks
    segs = list(zip(seg_num.tolist(), seg_den.tolist()))
    width = max(-(-(num * 4 * grid) // den) for num, den in segs)  # the longest bar
    one_num, one_den = segs[0] if len(segs) == 1 else (0, 1)
    idx_bits = len(c.time).bit_length()
    track_bits, pos_bits = max(1, (n_tracks - 1).bit_length()), max(1, (width - 1).bit_length())
    fits = len(bar_starts).bit_length() + track_bits + pos_bits + 7 + idx_bits <= _PACKED_KEY_BITS
    if not fits:
        track_bits = pos_bits = idx_bits = 0

    # every note on the grid (onset, duration, pitch, written velocity, track), sorted by (bar, track,
    # position, pitch); equal (track, onset, pitch) are merged as they are written
    dur, pitch, vel, track, bar, pos, key, counts = kernels.grid_notes(
        c.time, c.duration, c.pitch, c.velocity, c.track, tpq, grid, _velocity_table(velocity_bins), bar_starts,
        one_num, one_den, one_num * 4 * grid, track_bits, pos_bits, idx_bits, n_tracks)
    if not len(key):
        return header + "\n"
    if fits:
        sort_keys(key)  # the keys are distinct (the index is in their low bits): any sort is stable
        order = key
    else:
        order = np.lexsort((pitch, pos, track, bar))

    # the kept tracks: those with notes (with max_tracks: the most notes once merged), numbered from 0
    keep = np.flatnonzero(counts).tolist()  # (merging keeps at least one note of every track that had some)
    if max_tracks is not None and len(keep) > max_tracks:
        bar, track, pos, pitch, dur, vel, counts = kernels.merge_sorted(order, idx_bits, bar, track, pos, pitch, dur,
                                                                        vel, n_tracks)
        order = np.arange(len(bar), dtype=np.int64)  # merged and in order now
        idx_bits = track_bits = pos_bits = 0
        keep = sorted(sorted(keep, key=lambda i: (-counts[i], i))[: max(0, max_tracks)])
    tids = np.full(n_tracks, -1, dtype=np.int64)
    tids[keep] = np.arange(len(keep))
    out = [header, *_declarations(score, c, keep, names)]
    if not keep:
        return "\n".join(out) + "\n"

    # conductor tokens: every time signature change (``ts_bar`` ascending; the writer stops at the
    # bar of the last note) and the tempos
    t = score.tempos.numpy()
    body = kernels.write_notes(order, idx_bits, track_bits, pos_bits, bar, track, pos, pitch, dur, vel, tids, c.drums,
                               ts_bar, ts_num, ts_den, t["time"], t["mspq"], tpq, grid, bounds, DEFAULT_TEMPO,
                               kernels.PITCH_NAME_BYTES, kernels.PITCH_NAME_LENS)
    return "\n".join(out) + body.tobytes().decode("ascii") + "\n"


def _declarations(score: Score, c: NoteColumns, keep: list[int], names: bool) -> list[str]:
    """The ``track`` lines of the kept tracks (``keep``: their indices in ``score.tracks``)."""
    out = []
    programs, drums = c.programs.tolist(), c.drums.tolist()
    for i, t in enumerate(keep):
        decl = f"track t{i} program={programs[t] & 0x7F}"
        if drums[t]:
            decl += " drum"
        if names:
            name = _sanitize_name(str(c.names[t] if c.names else score.tracks[t].name))
            if name:
                decl += f" name={name}"
        out.append(decl)
    return out


_PACKED_KEY_BITS = 62  # the notes' sort key and row index in one int64 when they fit in this many bits
_ONE_CALL = True  # the layout by kernels.grid_keys where it can (tests compare it with the general path)


def read_grid(text: str) -> int:
    """The grid declared in the header of MIDI text (4 when none), to re-encode alike."""
    for tok in text[:4096].split():
        if tok.startswith("grid="):
            g = _int(tok[5:], 1, MAX_GRID)
            return 4 if g is None else g
        if tok in ("bar", "track"):
            break
    return 4


def quantize(score: Score, *, grid: int = 4, velocity_bins: int = 128) -> Score:
    """``score`` on the grid (``tpq == grid``) by the encoder's rules, every track kept.

    Notes are rounded and merged as in :func:`encode` (with the default 128 velocity bins the
    velocities stay as they are); tempo and time-signature times are rounded to the grid.
    Piano rolls use it so that they agree with the text form note for note.
    """
    if not 1 <= grid <= MAX_GRID:
        raise ValueError(f"grid must be in 1..{MAX_GRID}, got {grid}")
    if score.ttype != symusic.TimeUnit.tick:
        score = score.to("tick")
    tpq = int(score.tpq)
    out = Score(grid)
    for ts in score.time_signatures:
        step = _round_step(ts.time, tpq, grid)
        out.time_signatures.append(TimeSignature(step, ts.numerator, ts.denominator))
    for t in score.tempos:
        step = _round_step(t.time, tpq, grid)
        out.tempos.append(Tempo(step, mspq=int(t.mspq)))
    for tr in score.tracks:
        on, dur, pitch, vel = _quantized_notes(tr, tpq, grid, velocity_bins)
        new = Track(str(tr.name), int(tr.program) & 0x7F, bool(tr.is_drum))
        if len(on):
            new.notes = Note.from_numpy(
                on.astype(np.int32),
                dur.astype(np.int32),
                pitch.astype(np.int8),
                vel.astype(np.int8),
            )
        out.tracks.append(new)
    return out


# ----------------------------------------------------------------------------- decoding


class _Problems:
    def __init__(self, strict: bool, text: str):
        self.strict = strict
        self.text = text
        self.items: list[tuple[int, str]] = []  # (token index, message)

    def add(self, index: int, message: str) -> None:
        if self.strict:
            line, col = _locate(self.text, [index])[0]
            raise MidiTextError(message, line, col)
        self.items.append((index, message))


def _locate(text: str, indices: list[int]) -> list[tuple[int, int]]:
    """1-based (line, column) of the whitespace-separated tokens with the given indices."""
    wanted = sorted(set(indices))
    offsets: dict[int, int] = {}
    w = 0
    for k, m in enumerate(re.finditer(r"\S+", text)):
        if w < len(wanted) and k == wanted[w]:
            offsets[k] = m.start()
            w += 1
            if w == len(wanted):
                break
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    result = []
    for idx in indices:
        off = offsets.get(idx, len(text))
        ln = bisect_right(line_starts, off) - 1
        result.append((ln + 1, off - line_starts[ln] + 1))
    return result


def _int(s: str, lo: int, hi: int) -> int | None:
    if not (s.isascii() and s.isdigit()) or len(s) > 7:
        return None
    v = int(s)
    return v if lo <= v <= hi else None


_note_cache: dict[str, tuple[int, int] | None] = {}


def _parse_note(tok: str) -> tuple[int, int] | None:
    r = _note_cache.get(tok, False)
    if r is not False:
        return r
    p, sep, d = tok.partition(":")
    result = None
    if sep:
        pitch = _PITCHES.get(p)
        dur = _int(d, 1, MAX_STEPS)
        if pitch is not None and dur is not None:
            result = (pitch, dur)
    if len(_note_cache) < 100_000:
        _note_cache[tok] = result
    return result


@dataclass
class _TrackNotes:
    """A track as the decoder collects it: its declaration and its notes, column by column."""

    name: str = ""
    program: int = 0
    drum: bool = False
    onsets: list[int] = field(default_factory=list)  # grid steps
    durations: list[int] = field(default_factory=list)
    pitches: list[int] = field(default_factory=list)
    velocities: list[int] = field(default_factory=list)


class _Decoder:
    """One pass over the whitespace tokens of a MIDI text: header, track declarations, then bars.

    Each token kind has its own method (``_position``, ``_bar``, ``_time_signature``, ...); each
    problem is reported through :class:`_Problems` and the token skipped, so tolerant decoding
    keeps every valid part.
    """

    def __init__(self, text: str, strict: bool):
        self.problems = _Problems(strict, text)
        self.toks = text.split()
        self.grid = 4
        self.tracks: dict[int, _TrackNotes] = {}
        self.last_vel: dict[int, int] = {}  # track id -> its last velocity
        self.tempos: list[tuple[int, float]] = []  # (grid step, qpm)
        self.sigs: list[tuple[int, int, int]] = []  # (grid step, numerator, denominator)
        # the current time-signature segment: its first step, signature, and bar count within it
        self.seg_start, self.seg_num, self.seg_den, self.seg_k = 0, 4, 4, -1
        self.bar_start = -1  # -1: before the first bar
        self.bar_len = 16
        self.cur: _TrackNotes | None = None  # the track section being read
        self.cur_id = -1
        self.pos = 0
        self.vel = DEFAULT_VELOCITY
        self.ts_allowed = False  # a ts= token may only follow 'bar' directly

    def run(self) -> _Decoder:
        toks, n = self.toks, len(self.toks)
        i = 0
        if n and toks[0] == "MIDI":
            i = 1
        elif n:
            self.problems.add(0, "missing 'MIDI' header")
        while i < n:
            i = self._token(i, toks[i])
        return self

    def _token(self, i: int, tok: str) -> int:
        """Read the token at ``i``; returns the index of the next one."""
        c = tok[0]
        if c == "@":
            self._position(i, tok)
        elif self.cur is not None and c != "t" and c != "b" and self._section_item(i, tok):
            pass
        elif c == "t" and tok[1:2].isdigit():
            self._section(i, tok)
        elif tok == "bar":
            self._bar()
        elif tok.startswith("tempo="):
            self._tempo(i, tok)
        elif tok.startswith("ts="):
            self._time_signature(i, tok)
        elif tok == "track":
            return self._track_declaration(i)
        elif tok.startswith("grid="):
            self._grid(i, tok)
        elif tok.startswith("vel="):
            self._velocity_bins(i, tok)
        else:
            self._stray(i, tok)
        return i + 1

    # -- inside a bar ----------------------------------------------------------------------------
    def _position(self, i: int, tok: str) -> None:
        p = _int(tok[1:], 0, MAX_STEPS)
        if p is None:
            self.problems.add(i, f"bad position {tok!r}")
        elif self.bar_start < 0:
            self.problems.add(i, f"position {tok!r} before the first bar")
        else:
            if p >= self.bar_len:
                self.problems.add(i, f"position {tok!r} outside the bar (length {self.bar_len})")
            self.pos = p
            self.ts_allowed = False

    def _section_item(self, i: int, tok: str) -> bool:
        """A velocity or a note of the current track section; False when ``tok`` is neither."""
        if tok[0] == "v" and tok[1:2].isdigit():
            v = _int(tok[1:], 1, 127)
            if v is None:
                self.problems.add(i, f"bad velocity {tok!r} (1..127)")
            else:
                self.vel = v
                self.last_vel[self.cur_id] = v
            return True
        note = _parse_note(tok)
        if note is None:
            return False
        cur = self.cur
        cur.onsets.append(self.bar_start + self.pos)
        cur.durations.append(note[1])
        cur.pitches.append(note[0])
        cur.velocities.append(self.vel)
        return True

    def _section(self, i: int, tok: str) -> None:
        """``tN``: the notes that follow belong to track N, from the bar's start."""
        tid = _int(tok[1:], 0, 65535)
        if tid is None:
            self.problems.add(i, f"bad track id {tok!r}")
            self.cur = None
        elif self.bar_start < 0:
            self.problems.add(i, f"track section {tok!r} before the first bar")
            self.cur = None
        else:
            if tid not in self.tracks:
                self.problems.add(i, f"undeclared track {tok!r}")
            self.cur = self.tracks.setdefault(tid, _TrackNotes())
            self.cur_id = tid
            self.vel = self.last_vel.get(tid, DEFAULT_VELOCITY)
            self.pos = 0
            self.ts_allowed = False

    def _bar(self) -> None:
        self.seg_k = 0 if self.bar_start < 0 else self.seg_k + 1
        self.bar_start = self.seg_start + (self.seg_k * self.seg_num * 4 * self.grid) // self.seg_den
        self.bar_len = (self.seg_num * 4 * self.grid) // self.seg_den
        self.cur = None
        self.pos = 0
        self.ts_allowed = True

    def _tempo(self, i: int, tok: str) -> None:
        try:
            q = float(tok[6:])
        except ValueError:
            q = float("nan")
        if not (0 < q <= 10000):
            self.problems.add(i, f"bad tempo {tok!r}")
        elif self.bar_start < 0:
            self.problems.add(i, "tempo before the first bar")
        else:
            self.tempos.append((self.bar_start + self.pos, q))

    def _time_signature(self, i: int, tok: str) -> None:
        """``ts=N/D`` right after ``bar``: a new segment starts at this bar."""
        num_s, _, den_s = tok[3:].partition("/")
        num, den = _int(num_s, 1, 128), _int(den_s, 1, 128)
        if num is None or den is None or not _valid_ts(num, den, self.grid):
            self.problems.add(i, f"bad time signature {tok!r}")
        elif not self.ts_allowed:
            self.problems.add(i, f"time signature {tok!r} must follow 'bar' directly")
        else:
            start = self.bar_start
            self.seg_start, self.seg_num, self.seg_den, self.seg_k = start, num, den, 0
            self.bar_len = (num * 4 * self.grid) // den
            if self.sigs and self.sigs[-1][0] == start:
                self.sigs[-1] = (start, num, den)
            else:
                self.sigs.append((start, num, den))

    # -- header ----------------------------------------------------------------------------------
    def _track_declaration(self, i: int) -> int:
        """``track tN [program=P] [drum] [name=S]``; returns the index after its attributes."""
        toks, n = self.toks, len(self.toks)
        tid = _int(toks[i + 1][1:], 0, 65535) if i + 1 < n and toks[i + 1][:1] == "t" else None
        if tid is None:
            self.problems.add(i, "'track' must be followed by a track id such as t0")
            return i + 1
        if self.bar_start >= 0:
            self.problems.add(i, "track declared after the first bar")
        if tid in self.tracks:
            self.problems.add(i + 1, f"track t{tid} declared twice")
        rec = self.tracks.setdefault(tid, _TrackNotes())
        self.cur = None
        i += 2
        while i < n and self._track_attribute(i, toks[i], rec):
            i += 1
        return i

    def _track_attribute(self, i: int, a: str, rec: _TrackNotes) -> bool:
        """Read one attribute of a track declaration; False when ``a`` is not one."""
        if a.startswith("program="):
            prog = _int(a[8:], 0, 127)
            if prog is None:
                self.problems.add(i, f"bad program {a!r} (0..127)")
            else:
                rec.program = prog
        elif a == "drum":
            rec.drum = True
        elif a.startswith("name="):
            rec.name = a[5:]
        else:
            return False
        return True

    def _grid(self, i: int, tok: str) -> None:
        g = _int(tok[5:], 1, MAX_GRID)
        if g is None:
            self.problems.add(i, f"bad grid {tok!r} (1..{MAX_GRID})")
        elif self.bar_start >= 0 or self.tracks:
            self.problems.add(i, "grid= must come in the header, before tracks and bars")
        else:
            self.grid = g
            self.bar_len = 4 * g

    def _velocity_bins(self, i: int, tok: str) -> None:
        if _int(tok[4:], 1, 128) is None:
            self.problems.add(i, f"bad velocity bins {tok!r}")
        elif self.bar_start >= 0 or self.tracks:
            self.problems.add(i, "vel= must come in the header, before tracks and bars")

    def _stray(self, i: int, tok: str) -> None:
        """A note or velocity outside a track section, or junk."""
        if _parse_note(tok) is not None or (tok[0] == "v" and _int(tok[1:], 1, 127) is not None):
            self.problems.add(i, f"{tok!r} outside a track section")
        else:
            self.problems.add(i, f"unknown token {tok!r}")


def _decode(text: str, strict: bool) -> _Decoder:
    return _Decoder(text, strict).run()


def _build_score(d: _Decoder, tpq: int | None) -> Score:
    grid = d.grid
    if tpq is None:
        tpq = grid * -(-480 // grid)
    if tpq % grid:
        raise ValueError(f"tpq {tpq} is not a multiple of the grid {grid}")
    f = tpq // grid
    score = Score(tpq)
    for start, num, den in d.sigs:
        if start * f < 2**31:
            score.time_signatures.append(TimeSignature(start * f, num, den))
    for step, qpm in d.tempos:
        if step * f < 2**31:
            score.tempos.append(Tempo(step * f, qpm=qpm))
    for tid in sorted(d.tracks):
        rec = d.tracks[tid]
        tr = Track(rec.name, rec.program, rec.drum)
        if rec.onsets:
            on_t = np.asarray(rec.onsets, dtype=np.int64) * f
            dur_t = np.asarray(rec.durations, dtype=np.int64) * f
            ok = on_t + dur_t < 2**31  # symusic stores int32 ticks
            tr.notes = Note.from_numpy(
                on_t[ok].astype(np.int32),
                dur_t[ok].astype(np.int32),
                np.asarray(rec.pitches, dtype=np.int8)[ok],
                np.asarray(rec.velocities, dtype=np.int8)[ok],
            )
            tr.notes.sort()
        score.tracks.append(tr)
    return score


def decode(text: str, *, strict: bool = False, tpq: int | None = None) -> Score:
    """Parse MIDI text into a ``symusic.Score``.

    Tolerant by default: unknown or malformed tokens are skipped and the valid parts kept.
    With ``strict=True`` the first problem raises :class:`MidiTextError` (``line``, ``col``).
    ``tpq`` is the ticks per quarter of the result (default: the smallest multiple of the
    grid that is at least 480, which is 480 for grids 1-6, 8, 10, 12, 16, ...).
    """
    return _build_score(_decode(text, strict), tpq)


def problems(text: str) -> list[tuple[int, int, str]]:
    """Every problem in ``text`` as ``(line, col, message)``; empty when the text is valid."""
    found = _decode(text, False).problems
    if not found.items:
        return []
    where = _locate(text, [i for i, _ in found.items])
    return [(ln, col, msg) for (ln, col), (_, msg) in zip(where, found.items)]


def validate(text: str) -> list[str]:
    """Every problem in ``text`` as ``"line:col: message"``; empty when the text is valid."""
    return [f"{ln}:{col}: {msg}" for ln, col, msg in problems(text)]
