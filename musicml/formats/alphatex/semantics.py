"""What a staff is (tuning, capo, program, percussion, note kind) and the semantic checks
alphaTab's importer makes after parsing (its "semantic diagnostics")."""

from __future__ import annotations

from dataclasses import dataclass

from musicml.formats.alphatex import instruments as I
from musicml.formats.alphatex.ast import Ident, MetaData, Note, Score, Staff, Track
from musicml.formats.alphatex.diagnostics import ERROR, WARNING, Diagnostic
from musicml.formats.alphatex.signatures import VALID_DURATIONS

FRETTED = "fretted"
PITCHED = "pitched"
PERCUSSION = "percussion"


@dataclass
class StaffInfo:
    program: int
    percussion: bool
    tuning: tuple[int, ...]  # MIDI pitch of each string, string 1 (highest) first
    explicit_tuning: bool
    capo: int
    transpose: int
    kind: str  # fretted | pitched | percussion
    articulations: dict[str, int]


def _text(v) -> str | None:
    if isinstance(v, Ident):
        return v.text
    if isinstance(v, str):
        return v
    return None


def _instrument_value(track: Track, staff: Staff):
    value = None
    for p in (track.tag.properties or []) if track.tag else []:
        if p.name == "instrument" and p.values:
            value = p.values[0]
    for m in staff.metadata:
        if m.tag == "instrument" and m.values:
            value = m.values[0]
    return value


def _first_note(staff: Staff) -> Note | None:
    for voice in staff.voices[:1]:
        for bar in voice.bars:
            for beat in bar.beats:
                if beat.notes:
                    return beat.notes[0]
    return None


def tuning_of(meta: MetaData) -> tuple[int, ...] | None:
    """Pitches of a ``\\tuning`` tag (empty for piano/none/voice); None if a value is invalid."""
    out = []
    for v in meta.values:
        t = _text(v)
        if t is None:
            return None
        if t.lower() in ("piano", "none", "voice") and len(meta.values) == 1:
            return ()
        p = I.parse_pitch(t)
        if p is None:
            return None
        out.append(p)
    return tuple(out)


def staff_info(track: Track, staff: Staff) -> StaffInfo:
    inst = _instrument_value(track, staff)
    percussion = isinstance(inst, (Ident, str)) and str(inst).lower() == "percussion"
    program = I.DEFAULT_PROGRAM
    if inst is not None and not percussion:
        program = I.program_or_default(inst)
    tuning: tuple[int, ...] | None = None
    capo = 0
    transpose = 0
    articulations: dict[str, int] = {}
    for m in staff.metadata:
        if m.tag == "tuning":
            t = tuning_of(m)
            tuning = t if t is not None else tuning
        elif m.tag == "capo" and m.values and isinstance(m.values[0], (int, float)):
            capo = int(m.values[0])
        elif m.tag == "transpose" and m.values and isinstance(m.values[0], (int, float)):
            transpose = int(m.values[0])
        elif m.tag == "articulation" and len(m.values) >= 2:
            name = _text(m.values[0])
            if name is not None and isinstance(m.values[1], (int, float)):
                articulations[name.lower()] = int(m.values[1])
    explicit = tuning is not None
    if percussion:
        kind = PERCUSSION
        tuning = ()
    else:
        if tuning is None:
            tuning = I.default_tuning(program)
            first = _first_note(staff)
            if first is not None and isinstance(first.value, (Ident, str)):
                if I.parse_pitch(str(first.value)) is not None:
                    tuning = ()  # alphaTab turns the staff into a pitched one
        kind = FRETTED if tuning else PITCHED
    return StaffInfo(program, percussion, tuning, explicit, capo, transpose, kind, articulations)


def note_kind(note: Note, info: StaffInfo) -> str | None:
    """fretted / pitched / percussion for a note as written (None for x and - without string)."""
    v = note.value
    if isinstance(v, int):
        return FRETTED if note.string is not None else (PERCUSSION if info.percussion else PITCHED)
    t = str(v)
    if t in ("x", "-"):
        return FRETTED if note.string is not None else None
    if info.percussion:
        return PERCUSSION
    return PITCHED if I.parse_pitch(t) is not None else None


def check_score(score: Score, source: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []

    def err(pos, msg):
        diags.append(Diagnostic(ERROR, pos[0], pos[1], msg, source))

    def warn(pos, msg):
        diags.append(Diagnostic(WARNING, pos[0], pos[1], msg, source))

    for track in score.tracks:
        if track.tag is not None:
            for p in track.tag.properties or []:
                if p.name == "instrument" and p.values and not _instrument_ok(p.values[0]):
                    warn(
                        p.pos,
                        f"unknown instrument '{p.values[0]}' (alphaTab plays it as program 0)",
                    )
        for staff in track.staves:
            for m in staff.metadata:
                if m.tag == "tuning" and tuning_of(m) is None:
                    err(
                        m.pos,
                        "invalid \\tuning: expected pitch names such as E4 B3 G3 D3 A2 E2, or piano/none/voice",
                    )
                elif m.tag == "instrument" and m.values and not _instrument_ok(m.values[0]):
                    warn(
                        m.pos,
                        f"unknown instrument '{m.values[0]}' (alphaTab plays it as program 0)",
                    )
            info = staff_info(track, staff)
            _check_staff(staff, info, err)
    return diags


def _instrument_ok(v) -> bool:
    if isinstance(v, (Ident, str)) and str(v).lower() == "percussion":
        return True
    return I.program_of(v) is not None


def _check_staff(staff: Staff, info: StaffInfo, err) -> None:
    nstrings = len(info.tuning)
    kind_name = {FRETTED: "Fretted", PITCHED: "Pitched", PERCUSSION: "Percussion"}
    for voice in staff.voices:
        for bar in voice.bars:
            for m in bar.metadata:
                if m.tag == "ts" and len(m.values) == 2:
                    num, den = m.values
                    if (
                        not (isinstance(num, int) and isinstance(den, int))
                        or not 1 <= num <= 255
                        or den not in (1, 2, 4, 8, 16, 32, 64)
                    ):
                        err(m.pos, f"invalid time signature {num}/{den} (numerator 1-255, denominator "
                                   "1, 2, 4, ... 64)")
                elif (
                    m.tag == "tempo"
                    and m.values
                    and isinstance(m.values[0], (int, float))
                    and m.values[0] <= 0
                ):
                    err(m.pos, f"invalid tempo {m.values[0]}")
            for beat in bar.beats:
                dc = beat.duration_change
                if dc is not None:
                    if dc.value not in VALID_DURATIONS:
                        err(
                            dc.pos,
                            f"invalid duration {dc.value} (expected 1, 2, 4, 8, 16, 32, 64, 128 or 256)",
                        )
                    _check_tuplets(dc.properties, err)
                if beat.duration is not None and beat.duration not in VALID_DURATIONS:
                    err(
                        beat.pos,
                        f"invalid duration {beat.duration} (expected 1, 2, 4, 8, 16, 32, 64, 128 or 256)",
                    )
                if beat.multiplier is not None and beat.multiplier < 1:
                    err(beat.pos, f"invalid beat multiplier {beat.multiplier}")
                _check_tuplets(beat.effects, err)
                for note in beat.notes or ():
                    _check_tuplets(note.effects, err)
                    _check_note(note, info, nstrings, kind_name, err)


def _check_tuplets(props, err) -> None:
    for p in props:
        if p.name == "tu":
            nums = [v for v in p.values if isinstance(v, int)]  # whole numbers of notes
            if not nums or len(nums) != len(p.values) or any(v <= 0 for v in nums) or len(nums) > 2:
                err(p.pos, f"invalid tuplet {' '.join(str(v) for v in p.values)}")


def _check_note(note: Note, info: StaffInfo, nstrings: int, kind_name, err) -> None:
    v = note.value
    k = note_kind(note, info)
    if k is None:
        t = str(v)
        if t in ("x", "-"):
            if info.kind == FRETTED:
                err(note.pos, f"missing string for '{t}' on a fretted staff (write {t}.string)")
            return
        err(note.pos, f"unrecognized note value '{t}'")
        return
    if info.percussion:
        if k != PERCUSSION:
            err(
                note.pos,
                f"wrong note kind '{kind_name[k]}' for a percussion staff: '{_note_text(note)}'",
            )
            return
        if isinstance(v, int):
            if v not in I.ARTICULATION_IDS and v not in info.articulations.values():
                err(note.pos, f"unknown percussion articulation {v}")
        else:
            name = str(v).lower()
            if I.articulation_id(name) is None and name not in info.articulations:
                err(note.pos, f"unknown percussion articulation '{v}'")
        return
    if k != info.kind:
        if k == PITCHED and isinstance(v, int):
            err(note.pos, f"missing string for fretted note {v} (write fret.string)")
        else:
            err(
                note.pos,
                f"wrong note kind '{kind_name[k]}' for a {info.kind} staff: '{_note_text(note)}'",
            )
        return
    if k == FRETTED:
        s = note.string
        if s is None or s < 1 or s > nstrings:
            err(note.pos, f"string {s} is out of range: the tuning has strings 1-{nstrings}")
        elif isinstance(v, int) and not 0 <= info.tuning[s - 1] + v + info.capo <= 127:
            err(note.pos, f"fret {v} on string {s} sounds MIDI pitch {info.tuning[s - 1] + v + info.capo}, "
                          "out of range 0-127")
    elif k == PITCHED and isinstance(v, int) and not 0 <= v <= 127:
        err(note.pos, f"MIDI pitch {v} out of range 0-127")


def _note_text(note: Note) -> str:
    v = note.value
    t = f'"{v}"' if isinstance(v, str) else str(v)
    return t if note.string is None else f"{t}.{note.string}"
