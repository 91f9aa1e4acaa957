"""The MIDI text encoder's loops over notes, compiled with numba.

:func:`musicml.formats.midi.text.encode` does the conductor work (time signatures, bar lines,
tempo events, track declarations) in Python; these kernels do what is per note: putting notes on
the grid, their sort key, merging notes that land on one (track, onset, pitch), and writing the
body's bytes. Each is one pass over flat integer arrays: written as loops they cost a few
nanoseconds a note, where numpy's whole-array operations and a string join per token cost ~100.

Compiled once per process on first use and cached on disk (``cache=True``: numba's own cache
beside this file, or under ``NUMBA_CACHE_DIR``), so a worker process loads them in milliseconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["grid_notes", "grid_keys", "segments", "bar_bounds", "merge_sorted", "write_notes", "PITCH_NAME_BYTES", "PITCH_NAME_LENS"]

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_NAMES = [f"{_NOTE_NAMES[p % 12]}{p // 12 - 1}".encode("ascii") for p in range(128)]
PITCH_NAME_BYTES = np.zeros((128, 4), dtype=np.uint8)  # "C#-1" at most: 4 bytes
PITCH_NAME_LENS = np.array([len(n) for n in _NAMES], dtype=np.int64)
for _p, _n in enumerate(_NAMES):
    PITCH_NAME_BYTES[_p, : len(_n)] = np.frombuffer(_n, dtype=np.uint8)


@njit(cache=True, nogil=True)
def grid_notes(time, duration, pitch, velocity, track, tpq, grid, vel_table, bar_starts, one_num, one_den, per,
               track_bits, pos_bits, idx_bits, n_tracks):  # pragma: no cover - compiled
    """Notes on the grid, with their bars and sort keys, as int64 arrays: (duration, pitch, written
    velocity, track, bar, position in the bar, key), then the notes kept of each of the ``n_tracks``.

    The notes before step 0 or outside pitches 0..127 are left out (see the encoding rules in
    :mod:`~musicml.formats.midi.text`: onset ``floor(t * grid / tpq + 1/2)``, the end likewise,
    duration at least 1; ``vel_table[v + 128]`` is the written velocity of stored velocity ``v``).
    ``one_num > 0``: one time signature from step 0 (``per`` = num * 4 * grid), whose bar ``k``
    starts at ``(k * per) // den``; else the bar is found in ``bar_starts`` (which must reach the
    last onset). The key packs bar, track (``track_bits``), position (``pos_bits``), pitch (7 bits)
    and the note's index (the low ``idx_bits``), from the highest bits down: its order is the
    notes' order, and :func:`write_notes` reads the fields back from it (the caller checks that it
    fits in an int64)."""
    n = len(time)
    dur = np.empty(n, dtype=np.int64)
    pit = np.empty(n, dtype=np.int64)
    vel = np.empty(n, dtype=np.int64)
    trk = np.empty(n, dtype=np.int64)
    bar = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    counts = np.zeros(n_tracks, dtype=np.int64)
    two_grid, two_tpq = 2 * grid, 2 * tpq
    k = 0
    for i in range(n):
        t = np.int64(time[i])
        p = np.int64(pitch[i])
        q = (t * two_grid + tpq) // two_tpq
        if q < 0 or p < 0 or p > 127:
            continue
        d = np.int64(duration[i])
        end = t + (d if d > 0 else 0)
        e = (end * two_grid + tpq) // two_tpq - q
        if one_num > 0:
            b = ((q + 1) * one_den - 1) // per
        else:
            b = np.searchsorted(bar_starts, q, side="right") - 1
        r = q - bar_starts[b]
        tr = np.int64(track[i])
        dur[k], pit[k], trk[k], bar[k], pos[k] = e if e > 1 else 1, p, tr, b, r
        vel[k] = vel_table[np.int64(velocity[i]) + 128]
        key[k] = (((((((b << track_bits) | tr) << pos_bits) | r) << 7) | p) << idx_bits) | k
        counts[tr] += 1
        k += 1
    return dur[:k], pit[:k], vel[:k], trk[:k], bar[:k], pos[:k], key[:k], counts


@njit(cache=True, nogil=True, inline="always")
def _floor_div(x, d, inv):  # pragma: no cover - compiled
    """``x // d`` (``d`` > 0, ``inv`` = ``1.0 / d``) by a multiplication: exact for ``|x|`` below
    2**50 (an int32 tick times a grid is below 2**41), where the float quotient is off by less
    than one and one step corrects it; a third of the cost of the three divisions a note took."""
    q = np.int64(np.floor(np.float64(x) * inv))
    if q * d > x:
        q -= 1
    elif (q + 1) * d <= x:
        q += 1
    return q


@njit(cache=True, nogil=True, inline="always")
def _bit_length(v):  # pragma: no cover - compiled
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@njit(cache=True, nogil=True)
def segments(ts_time, ts_num, ts_den, tpq, grid):  # pragma: no cover - compiled
    """The time-signature segments of a score's time signatures (ticks, numerators, denominators):
    (start step, num, den) arrays, each segment starting on a bar line. 4/4 from step 0 until the
    first valid signature; a signature (in step order, then as stored) takes effect at the first bar
    line at or after its step (replacing the current one where that is the segment's start); an
    invalid one (see the encoding rules) or a repeat of the current one changes nothing."""
    m = len(ts_time)
    steps = np.empty(m, dtype=np.int64)
    for i in range(m):
        steps[i] = (2 * np.int64(ts_time[i]) * grid + tpq) // (2 * tpq)
    order = _stable_order(steps)  # by step, then as stored
    start = np.empty(m + 1, dtype=np.int64)
    nums = np.empty(m + 1, dtype=np.int64)
    dens = np.empty(m + 1, dtype=np.int64)
    start[0], nums[0], dens[0] = 0, 4, 4
    n = 1
    for j in range(m):
        i = order[j]
        num, den = np.int64(ts_num[i]), np.int64(ts_den[i])
        if not (1 <= num <= 128 and 1 <= den <= 128 and den & (den - 1) == 0 and num * 4 * grid >= den):
            continue
        s, cnum, cden = start[n - 1], nums[n - 1], dens[n - 1]
        t = max(steps[i], s)
        k = -(-(t - s) * cden // (cnum * 4 * grid))  # ceil
        boundary = s + (k * cnum * 4 * grid) // cden
        if boundary == s:
            nums[n - 1], dens[n - 1] = num, den
            if n > 1 and nums[n - 2] == num and dens[n - 2] == den:
                n -= 1
        elif num != cnum or den != cden:
            start[n], nums[n], dens[n] = boundary, num, den
            n += 1
    return start[:n], nums[:n], dens[:n]


@njit(cache=True, nogil=True)
def bar_bounds(start, nums, dens, grid, last):  # pragma: no cover - compiled
    """The bars of :func:`segments`: the start of every bar up to the one holding step ``last``
    (>= 0), then that bar's end; and the bars where a signature starts (ascending), with its
    numerator and denominator. A later ``last`` only adds bars: the bars up to an earlier one stay."""
    total = 0
    n_seg = 0
    for i in range(len(start)):  # the first segment starts at 0 <= last: the loop ends on a last one
        is_last = i + 1 == len(start) or start[i + 1] > last
        end = last + 1 if is_last else start[i + 1]
        count = max(1, -(-(end - start[i]) * dens[i] // (nums[i] * 4 * grid)))
        total += count + 1 if is_last else count
        n_seg += 1
        if is_last:
            break
    bounds = np.empty(total, dtype=np.int64)
    ts_bar = np.empty(n_seg, dtype=np.int64)
    k = 0
    bars = 0
    for i in range(n_seg):
        is_last = i + 1 == n_seg
        end = last + 1 if is_last else start[i + 1]
        per = nums[i] * 4 * grid
        count = max(1, -(-(end - start[i]) * dens[i] // per))
        for j in range(count + 1 if is_last else count):
            bounds[k] = start[i] + (j * per) // dens[i]
            k += 1
        ts_bar[i] = bars
        bars += count
    return bounds, ts_bar, nums[:n_seg].copy(), dens[:n_seg].copy()


@njit(cache=True, nogil=True)
def grid_keys(time, duration, pitch, velocity, track, n_tracks, tpq, grid, vel_table, ts_time, ts_num,
              ts_den, key_bits):  # pragma: no cover - compiled
    """The whole layout of :func:`musicml.formats.midi.text.encode` (no track chosen) in one call:
    the time-signature segments and bars (:func:`segments`, :func:`bar_bounds`) and the notes on the
    grid with their packed keys (:func:`grid_notes`, fields read back from the key). Returns
    ``(status, idx_bits, track_bits, pos_bits, bounds, ts_bar, ts_num, ts_den, dur, vel, key, tids, n_bars,
    top)``: status 0 for the notes laid out (``key`` unsorted; ``tids``: each track's number as
    written, -1 for one with no note on the grid; ``n_bars`` and ``top`` as :func:`write_notes`
    takes them), 1 for a text of the header alone, 2 where the packed key
    does not fit in ``key_bits`` (the caller takes the general path)."""
    e = np.zeros(0, dtype=np.int64)
    n = len(time)
    last = np.int64(-1)
    for i in range(n):
        last = max(last, np.int64(time[i]))
    last = (2 * last * grid + tpq) // (2 * tpq) if n else np.int64(-1)
    if last < 0:
        return 1, 0, 0, 0, e, e, e, e, e, e, e, e, 0, 0
    seg_start, seg_num, seg_den = segments(ts_time, ts_num, ts_den, tpq, grid)
    bounds, ts_bar, bar_num, bar_den = bar_bounds(seg_start, seg_num, seg_den, grid, last)
    width = np.int64(1)
    for i in range(len(seg_start)):
        width = max(width, -(-(seg_num[i] * 4 * grid) // seg_den[i]))
    n_bars = len(bounds) - 1
    idx_bits = _bit_length(n)
    track_bits, pos_bits = max(1, _bit_length(n_tracks - 1)), max(1, _bit_length(width - 1))
    if _bit_length(n_bars) + track_bits + pos_bits + 7 + idx_bits > key_bits:
        return 2, 0, 0, 0, e, e, e, e, e, e, e, e, 0, 0
    one_num, one_den = (seg_num[0], seg_den[0]) if len(seg_start) == 1 else (0, 1)
    per = one_num * 4 * grid
    dur = np.empty(n, dtype=np.int64)
    vel = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    counts = np.zeros(n_tracks, dtype=np.int64)
    two_grid, two_tpq = 2 * grid, 2 * tpq
    inv_tpq, inv_per = 1.0 / two_tpq, 1.0 / max(per, 1)
    k = 0
    top_bar = top = np.int64(0)
    for i in range(n):
        t = np.int64(time[i])
        p = np.int64(pitch[i])
        q = _floor_div(t * two_grid + tpq, two_tpq, inv_tpq)
        if q < 0 or p < 0 or p > 127:
            continue
        d = np.int64(duration[i])
        end = t + (d if d > 0 else 0)
        g = _floor_div(end * two_grid + tpq, two_tpq, inv_tpq) - q
        if one_num > 0:
            b = _floor_div((q + 1) * one_den - 1, per, inv_per)
        else:
            b = np.searchsorted(bounds[:n_bars], q, side="right") - 1
        r = q - bounds[b]
        tr = np.int64(track[i])
        dur[k] = g if g > 1 else 1
        top, top_bar = max(top, dur[k]), max(top_bar, b)
        vel[k] = vel_table[np.int64(velocity[i]) + 128]
        key[k] = (((((((b << track_bits) | tr) << pos_bits) | r) << 7) | p) << idx_bits) | k
        counts[tr] += 1
        k += 1
    if k == 0:
        return 1, 0, 0, 0, e, e, e, e, e, e, e, e, 0, 0
    tids = np.full(n_tracks, -1, dtype=np.int64)
    m = 0
    for t in range(n_tracks):
        if counts[t] > 0:
            tids[t] = m
            m += 1
    top = max(top, width - 1, n_tracks)
    return 0, idx_bits, track_bits, pos_bits, bounds, ts_bar, bar_num, bar_den, dur[:k], vel[:k], key[:k], tids, \
        top_bar + 1, top


@njit(cache=True, nogil=True)
def merge_sorted(order, idx_bits, bar, track, pos, pitch, dur, vel, n_tracks):  # pragma: no cover - compiled
    """The notes in sorted order with runs of equal (bar, track, position, pitch) merged into one
    (longest duration, loudest velocity), and the notes per track after the merge. ``order``: the
    sorted keys of :func:`grid_notes` (``idx_bits`` > 0: a run is one key above its low bits),
    or the note indices in order (``idx_bits`` 0: a run has equal fields)."""
    n = len(order)
    mask = (np.int64(1) << idx_bits) - 1
    b_out = np.empty(n, dtype=np.int64)
    t_out = np.empty(n, dtype=np.int64)
    p_out = np.empty(n, dtype=np.int64)
    pi_out = np.empty(n, dtype=np.int64)
    d_out = np.empty(n, dtype=np.int64)
    v_out = np.empty(n, dtype=np.int64)
    counts = np.zeros(n_tracks, dtype=np.int64)
    k = -1
    prev = np.int64(-1)
    for j in range(n):
        if idx_bits > 0:
            i = order[j] & mask
            g = order[j] >> idx_bits
            same = g == prev
            prev = g
        else:
            i = order[j]
            same = (k >= 0 and bar[i] == b_out[k] and track[i] == t_out[k] and pos[i] == p_out[k]
                    and pitch[i] == pi_out[k])
        if same:
            d_out[k] = max(d_out[k], dur[i])
            v_out[k] = max(v_out[k], vel[i])
            continue
        k += 1
        b_out[k] = bar[i]
        t_out[k] = track[i]
        p_out[k] = pos[i]
        pi_out[k] = pitch[i]
        d_out[k] = dur[i]
        v_out[k] = vel[i]
        counts[track[i]] += 1
    k += 1
    return b_out[:k], t_out[:k], p_out[:k], pi_out[:k], d_out[:k], v_out[:k], counts


@njit(cache=True, nogil=True, inline="always")
def _digits(v):  # pragma: no cover - compiled
    n = 1
    while v >= 10:
        v //= 10
        n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _put_int(buf, k, v):  # pragma: no cover - compiled
    """Write the decimal digits of ``v`` >= 0 at ``buf[k:]``; the index after them."""
    if v < 10:  # most positions, durations and track numbers
        buf[k] = 48 + v
        return k + 1
    if v < 100:
        buf[k] = 48 + v // 10
        buf[k + 1] = 48 + v % 10
        return k + 2
    end = k + _digits(v)
    j = end - 1
    while True:
        buf[j] = 48 + v % 10
        v //= 10
        if v == 0:
            break
        j -= 1
    return end


@njit(cache=True, nogil=True, inline="always")
def _put_signed(buf, k, v):  # pragma: no cover - compiled
    if v < 0:
        buf[k] = 45  # "-"
        return _put_int(buf, k + 1, -v)
    return _put_int(buf, k, v)


@njit(cache=True, nogil=True, inline="always")
def _put_bytes(buf, k, text):  # pragma: no cover - compiled
    for j in range(len(text)):
        buf[k + j] = text[j]
    return k + len(text)


@njit(cache=True, nogil=True)
def tempo_events(time, mspq, tpq, grid, starts, bar_end, default_qpm):  # pragma: no cover - compiled
    """The tempo changes to write, as (bar, position in the bar, whole QPM) arrays in writing order
    (by bar; in a bar, in time order). Per the encoding rules: the last tempo at each grid step,
    QPM rounded half to even and clamped to 1..999, repeats of the current tempo dropped,
    ``default_qpm`` first when the score has none at step 0, nothing from ``bar_end`` on.
    ``starts``: the start of every bar written; a tempo before step 0 goes to the last bar (its
    position then counted from that bar's start)."""
    m = len(time)
    step = np.empty(m, dtype=np.int64)
    qpm = np.empty(m, dtype=np.int64)
    k = 0
    for i in range(m):
        if mspq[i] <= 0:  # symusic's qpm (60e6 / mspq) is then infinite or negative
            continue
        step[k] = (2 * np.int64(time[i]) * grid + tpq) // (2 * tpq)
        qpm[k] = min(999, max(1, np.int64(np.rint(60_000_000.0 / mspq[i]))))
        k += 1
    order = _stable_order(step[:k])  # stable: the last of a step is its last stored
    ev_step = np.empty(k + 1, dtype=np.int64)
    ev_qpm = np.empty(k + 1, dtype=np.int64)
    n = 0
    has_zero = False
    for j in range(k):
        has_zero |= step[order[j]] == 0
    if not has_zero:
        ev_step[0], ev_qpm[0] = 0, default_qpm
        n = 1
    for j in range(k):
        i = order[j]
        if j + 1 < k and step[order[j + 1]] == step[i]:
            continue  # a later tempo at the same step wins
        if n > 0 and ev_qpm[n - 1] == qpm[i]:
            continue
        ev_step[n], ev_qpm[n] = step[i], qpm[i]
        n += 1
    n_bars = len(starts)
    cut = 0
    while cut < n and ev_step[cut] < bar_end:
        cut += 1
    bar = np.empty(cut, dtype=np.int64)
    pos = np.empty(cut, dtype=np.int64)
    for j in range(cut):
        b = np.searchsorted(starts, ev_step[j], side="right") - 1
        if b < 0:
            b = n_bars - 1
        bar[j] = b
        pos[j] = ev_step[j] - starts[b]
    if _ascending(bar):  # the usual case: no tempo before step 0
        return bar, pos, ev_qpm[:cut]
    order = np.argsort(bar, kind="mergesort")
    return bar[order], pos[order], ev_qpm[:cut][order]


@njit(cache=True, nogil=True, inline="always")
def _ascending(a):  # pragma: no cover - compiled
    for i in range(1, len(a)):
        if a[i] < a[i - 1]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _stable_order(a):  # pragma: no cover - compiled
    """``np.argsort(a, kind="mergesort")``, without the sort where ``a`` is in order already (a
    score's tempos usually are)."""
    if _ascending(a):
        return np.arange(len(a))
    return np.argsort(a, kind="mergesort")


_BAR = np.frombuffer(b"\nbar", dtype=np.uint8)
_TS = np.frombuffer(b" ts=", dtype=np.uint8)
_TEMPO = np.frombuffer(b" tempo=", dtype=np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _note_at(order, j, idx_bits, track_bits, pos_bits, bar, track, pos, pitch):  # pragma: no cover - compiled
    """(index, bar, track, position, pitch) of the ``j``-th note in ``order`` (see :func:`write_notes`)."""
    if track_bits > 0:  # the fields packed in the key (read in order: no gather from four arrays)
        key = order[j]
        g = key >> idx_bits
        return (key & ((np.int64(1) << idx_bits) - 1), g >> (7 + pos_bits + track_bits),
                (g >> (7 + pos_bits)) & ((np.int64(1) << track_bits) - 1), (g >> 7) & ((np.int64(1) << pos_bits) - 1),
                g & 127)
    i = order[j] & ((np.int64(1) << idx_bits) - 1) if idx_bits > 0 else order[j]
    return i, bar[i], track[i], pos[i], pitch[i]


@njit(cache=True, nogil=True)
def write_notes(order, idx_bits, track_bits, pos_bits, bar, track, pos, pitch, dur, vel, tids, drums, ts_bar, ts_num,
                ts_den, tempo_time, tempo_mspq, tpq, grid, bounds, default_qpm, names, name_lens, n_bars=-1,
                top=-1):  # pragma: no cover - compiled
    """The body of a MIDI text as ASCII bytes: for each bar up to the one of the last note written,
    its bar line, then its track sections.

    The notes are taken in ``order``, sorted by (bar, track, position, pitch): the sorted keys of
    :func:`grid_notes` (``track_bits`` > 0: the fields are read from the key, only the duration and
    velocity from the arrays), or note indices (``idx_bits`` 0: every field from the arrays); a
    run of equal (bar, track, position, pitch) is written as one note (longest duration, loudest
    velocity). ``tids[t]`` is the number written for track ``t`` (``tN``), -1 for a track left
    out; ``drums[t]`` says track ``t`` is a drum track (its pitches written as numbers, not
    names). A section starts with ``tN``; ``@pos`` is written when the position changes and ``vV``
    when the velocity does (both at a section's start). A bar line carries its time signature
    (``ts_bar`` ascending) and its tempo changes (:func:`tempo_events` of the score's tempos;
    ``bounds``: the start of every bar, then the end of the last). ``n_bars`` (the bars to write: up
    to the last note's) and ``top`` (a bound of every number of a note's tokens: their digits) are
    found from the notes where not given (-1); :func:`grid_keys`, whose keys keep every track, knows them."""
    n = len(order)
    if n_bars < 0:
        n_bars, top = 0, len(tids)
        for j in range(n):
            i, b, tr, r, _ = _note_at(order, j, idx_bits, track_bits, pos_bits, bar, track, pos, pitch)
            if tids[tr] >= 0:
                n_bars = max(n_bars, b + 1)
                top = max(top, r, dur[i])
    mask = (np.int64(1) << idx_bits) - 1
    buf, tempo_bar, tempo_pos, tempo_qpm = _body_buffer(n, n_bars, top, ts_bar, tempo_time, tempo_mspq, tpq, grid,
                                                        bounds, default_qpm)
    k = next_bar = s = e = 0  # where in the buffer; the next bar line, signature and tempo to write
    last_bar = last_tid = last_pos = last_vel = np.int64(-1)  # the note written last (none: -1)
    t_mask, p_mask = (np.int64(1) << track_bits) - 1, (np.int64(1) << pos_bits) - 1
    j = 0
    while j < n:
        if track_bits > 0:  # the fields from the key, once a run: a run is one key above the index bits
            g = order[j] >> idx_bits
            i = order[j] & mask
            b, tr, r, p = g >> (7 + pos_bits + track_bits), (g >> (7 + pos_bits)) & t_mask, (g >> 7) & p_mask, g & 127
            d, v = dur[i], vel[i]
            j += 1
            while j < n and (order[j] >> idx_bits) == g:  # the run of notes on this (bar, track, position, pitch)
                i = order[j] & mask
                d, v = max(d, dur[i]), max(v, vel[i])
                j += 1
        else:
            i, b, tr, r, p = _note_at(order, j, idx_bits, track_bits, pos_bits, bar, track, pos, pitch)
            d, v = dur[i], vel[i]
            j += 1
            while j < n:  # the run, from the fields
                i2, b2, tr2, r2, p2 = _note_at(order, j, idx_bits, track_bits, pos_bits, bar, track, pos, pitch)
                if b2 != b or tr2 != tr or r2 != r or p2 != p:
                    break
                d, v = max(d, dur[i2]), max(v, vel[i2])
                j += 1
        t = tids[tr]
        if t < 0:
            continue
        if next_bar <= b:
            k, next_bar, s, e = _bar_lines(buf, k, next_bar, b, s, e, ts_bar, ts_num, ts_den, tempo_bar, tempo_pos,
                                           tempo_qpm)
        new_section = b != last_bar or t != last_tid
        if new_section:
            buf[k], buf[k + 1] = 10, 116  # "\nt"
            k = _put_int(buf, k + 2, t)
        if new_section or r != last_pos:
            buf[k], buf[k + 1] = 32, 64  # " @"
            k = _put_int(buf, k + 2, r)
        if new_section or v != last_vel:
            buf[k], buf[k + 1] = 32, 118  # " v"
            k = _put_int(buf, k + 2, v)
        last_bar, last_tid, last_pos, last_vel = b, t, r, v
        buf[k] = 32
        k += 1
        if drums[tr]:
            k = _put_int(buf, k, p)
        else:
            for c in range(name_lens[p]):
                buf[k] = names[p, c]
                k += 1
        buf[k] = 58  # ":"
        k = _put_int(buf, k + 1, d)
    return buf[:k]


@njit(cache=True, nogil=True, inline="always")
def _body_buffer(n, n_bars, top, ts_bar, tempo_time, tempo_mspq, tpq, grid, bounds, default_qpm):  # pragma: no cover
    """A buffer large enough for the body of ``n`` notes over ``n_bars`` bars (``top`` bounds every
    number of a note), and the tempo events to write (:func:`tempo_events`)."""
    tempo_bar, tempo_pos, tempo_qpm = tempo_events(tempo_time, tempo_mspq, tpq, grid, bounds[:n_bars], bounds[n_bars],
                                                   default_qpm)
    size = 4 * n_bars + 12 * len(ts_bar) + n * (15 + 3 * _digits(top))  # every token of every note
    for j in range(len(tempo_bar)):
        size += 12 + _digits(abs(tempo_pos[j])) + 3 + 7
    return np.empty(size, dtype=np.uint8), tempo_bar, tempo_pos, tempo_qpm


@njit(cache=True, nogil=True, inline="always")
def _bar_lines(buf, k, next_bar, b, s, e, ts_bar, ts_num, ts_den, tempo_bar, tempo_pos, tempo_qpm):  # pragma: no cover
    """Write the bar lines from ``next_bar`` to bar ``b``, each with its time signature (the next is
    ``ts_bar[s]``) and tempo changes (the next is ``tempo_bar[e]``); ``(k, next_bar, s, e)`` after."""
    while next_bar <= b:
        k = _put_bytes(buf, k, _BAR)
        if s < len(ts_bar) and ts_bar[s] == next_bar:
            k = _put_bytes(buf, k, _TS)
            k = _put_int(buf, k, ts_num[s])
            buf[k] = 47  # "/"
            k = _put_int(buf, k + 1, ts_den[s])
            s += 1
        while e < len(tempo_bar) and tempo_bar[e] == next_bar:
            if tempo_pos[e] != 0:
                buf[k], buf[k + 1] = 32, 64  # " @"
                k = _put_signed(buf, k + 2, tempo_pos[e])
            k = _put_bytes(buf, k, _TEMPO)
            k = _put_int(buf, k, tempo_qpm[e])
            e += 1
        next_bar += 1
    return k, next_bar, s, e


KERNELS = (grid_notes, grid_keys, segments, bar_bounds, merge_sorted, write_notes)
