"""Pitch-shift augmentation: each work's representative, moved by k semitones, as new text.

Which shifts a piece allows is decided with polars on the note table (pitched notes must stay
inside ``[low, high]``, the MIDI range by default; drums never move). The text of a shifted copy
is written by the format's own transposer: alphaTex re-fingers notes on the fretboard (a shift
that cannot be played is skipped and counted), ABC is re-spelled in the shifted key (by the text
transposer; symusic's notes and midi2abc for the rare tune it declines), MIDI text is re-encoded
from the shifted score. With ``midi_to_atex``, every MIDI copy's guitar-range parts are also
written as an alphaTex tab (strings and frets by :func:`musicml.formats.alphatex.from_score`),
the same work in another format: this grows the alphaTex corpus from MIDI.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from musicml.threads import pool_workers, worker_init

AUG_SCHEMA: dict[str, pl.DataType] = {
    "aug_id": pl.String,
    "piece_id": pl.String,
    "work_id": pl.String,
    "format": pl.String,
    "shift": pl.Int8,
    "text": pl.String,
    "text_bytes": pl.Int64,
}


@dataclass(frozen=True)
class AugmentConfig:
    min_shift: int = -3
    max_shift: int = 3
    low: int = 0
    high: int = 127
    formats: tuple[str, ...] = ("atex", "abc", "midi")
    frets: int = 24
    workers: int = 0  # processes for transposition; 0: one per available core (never more)
    midi_to_atex: bool = False  # also write MIDI copies' guitar-range parts as alphaTex tabs

    def shifts(self) -> list[int]:
        return [k for k in range(self.min_shift, self.max_shift + 1) if k != 0]


@dataclass
class AugmentResult:
    table: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def allowed_shifts(notes: pl.DataFrame, config: AugmentConfig) -> pl.DataFrame:
    """Per piece, the list of shifts that keep every pitched note inside ``[low, high]``."""
    ranges = notes.filter(~pl.col("is_drum")).group_by("piece_id").agg(
        pl.col("pitch").min().alias("lo"), pl.col("pitch").max().alias("hi")
    )
    shifts = pl.DataFrame({"shift": config.shifts()}, schema={"shift": pl.Int8})
    return (
        ranges.join(shifts, how="cross")
        .filter(
            (pl.col("lo") + pl.col("shift") >= config.low) & (pl.col("hi") + pl.col("shift") <= config.high)
        )
        .group_by("piece_id")
        .agg(pl.col("shift").sort())
    )


def transpose_text(fmt: str, text: str, semitones: int, *, frets: int = 24) -> str | None:
    """``text`` of format ``fmt`` moved by ``semitones``; None when it cannot be (unplayable)."""
    return transpose_all(fmt, text, [semitones], frets=frets)[semitones]


def transpose_all(fmt: str, text: str, shifts: list[int], *, frets: int = 24) -> dict[int, str | None]:
    """Every shift of one piece, parsing its text once. Values: text, or None if unplayable.

    The format's own transposer (:meth:`musicml.formats.base.Format.transpose_all`) writes them;
    an unknown ``fmt`` raises ValueError."""
    from musicml.formats import get_format

    if not shifts:
        return {}
    return get_format(fmt).transpose_all(text, shifts, frets=frets)


# guitar range: E2 (40) to the 24th fret of the high E string (88)
GUITAR_LOW, GUITAR_HIGH = 40, 88


def midi_text_to_atex(text: str, *, frets: int = 24, min_share: float = 0.9) -> str | None:
    """alphaTex tab of the guitar-range parts of a MIDI-text piece; None when it has none.

    A part is guitar-range when it is not drums and at least ``min_share`` of its notes lie in
    E2..E6; the rest are moved by octaves into the fretboard by :func:`alphatex.from_score`.
    """
    from musicml.formats import alphatex
    from musicml.formats.midi import text as miditext

    score = miditext.decode(text)
    keep = [t for t in score.tracks if not t.is_drum and t.note_num() and sum(
        GUITAR_LOW <= n.pitch <= GUITAR_HIGH for n in t.notes) >= min_share * t.note_num()]
    if not keep:
        return None
    tabs = score.copy()
    tabs.tracks = [t.copy() for t in keep]
    return alphatex.from_score(tabs, frets=frets)


def _augment_piece(job: tuple[str, str, list[int], int, bool]) -> list[tuple[int, str, str | None, str | None]]:
    """``(shift, format, text or None, error or None)`` per output of one piece (runs in a worker)."""
    fmt, text, shifts, frets, to_atex = job
    try:
        out = [(k, fmt, t, None) for k, t in transpose_all(fmt, text, shifts, frets=frets).items()]
    except Exception as err:  # a transposer bug must not lose the original
        return [(k, fmt, None, f"{type(err).__name__}: {err}") for k in shifts]
    if to_atex and fmt == "midi":
        for k, moved in [(0, text), *[(k, t) for k, _, t, _ in out if t is not None]]:
            try:
                out.append((k, "atex", midi_text_to_atex(moved, frets=frets), None))
            except Exception as err:  # one bad piece must not stop the rest
                out.append((k, "atex", None, f"{type(err).__name__}: {err}"))
    return out


def augment(
    representatives: pl.DataFrame,
    notes: pl.DataFrame,
    config: AugmentConfig = AugmentConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> AugmentResult:
    """Originals (shift 0) plus every allowed shifted copy of each representative piece.

    Pieces are transposed in ``config.workers`` processes when there are many; the output is
    the same (sorted) whatever the number of workers.
    """
    reps = representatives.select("piece_id", "work_id", "format", "text").sort("piece_id")
    plan = reps.join(allowed_shifts(notes, config), on="piece_id", how="left").sort("piece_id")
    counts = {"originals": 0, "shifted": 0, "out_of_range": 0, "unplayable": 0, "failed": 0}
    if config.midi_to_atex:
        counts.update({"midi_as_atex": 0, "midi_without_guitar_part": 0})
    n_shifts = len(config.shifts())
    rows: list[dict] = []
    jobs = []
    for pid, wid, fmt, text, shifts in plan.iter_rows():
        rows.append(_aug_row(pid, wid, fmt, 0, text))
        counts["originals"] += 1
        todo = list(shifts or []) if fmt in config.formats else []
        if fmt in config.formats:
            counts["out_of_range"] += n_shifts - len(todo)
        jobs.append((pid, wid, fmt, (fmt, text, todo, config.frets, config.midi_to_atex)))
    workers = pool_workers(config.workers, len(jobs))
    parallel = workers > 1 and len(jobs) >= 64
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=worker_init) if parallel else None
    try:
        results = (pool.map(_augment_piece, [j[3] for j in jobs], chunksize=16) if pool
                   else map(_augment_piece, [j[3] for j in jobs]))
        for i, ((pid, wid, fmt, _), outcome) in enumerate(zip(jobs, results)):
            for k, out_fmt, moved, error in outcome:
                if error is not None:
                    counts["failed"] += 1
                elif out_fmt != fmt:  # a MIDI copy written as alphaTex
                    if moved is None:
                        counts["midi_without_guitar_part"] += 1
                    else:
                        rows.append(_aug_row(pid, wid, out_fmt, k, moved, tag="@atex"))
                        counts["midi_as_atex"] += 1
                elif moved is None:
                    counts["unplayable"] += 1
                else:
                    rows.append(_aug_row(pid, wid, fmt, k, moved))
                    counts["shifted"] += 1
            if progress:
                progress(i + 1, len(jobs))
    finally:
        if pool:
            pool.shutdown()
    table = pl.DataFrame(rows, schema=AUG_SCHEMA) if rows else pl.DataFrame(schema=AUG_SCHEMA)
    return AugmentResult(table.sort("aug_id"), counts)


def _aug_row(pid: str, wid: str, fmt: str, k: int, text: str, tag: str = "") -> dict:
    return {
        "aug_id": (pid if k == 0 else f"{pid}{k:+d}") + tag,
        "piece_id": pid,
        "work_id": wid,
        "format": fmt,
        "shift": k,
        "text": text,
        "text_bytes": len(text.encode("utf-8")),
    }
