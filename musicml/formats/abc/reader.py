"""ABC notation: split a file into tunes, read each with symusic, write transposed tunes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import symusic

from musicml.formats.errors import ScoreError
from musicml.formats.native import captured_native_output

_TUNE_START = re.compile(r"^X:", re.MULTILINE)
_NATIVE_MSG = re.compile(r"^(Error|Warning) in line-char (\d+)-(\d+) : (.*)$")
# Directives that make abc2midi (inside symusic) open another file: never passed on.
_INCLUDE = re.compile(r"^[ \t]*(%%|I:)[ \t]*abc-?include\b.*$", re.MULTILINE | re.IGNORECASE)
# A tune needs a K: field and at least one line of music after it to hold notes.
_KEY_LINE = re.compile(r"^K:", re.MULTILINE)


def strip_includes(text: str, source: str) -> tuple[str, list[str]]:
    """``text`` with every include directive (``%%abc-include``, ``I:abc-include``) blanked out
    (lines keep their numbers), and one warning per directive: nothing read from a score may
    make a reader open another file."""
    problems = []
    for m in _INCLUDE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        problems.append(f"{source}:{line}:1: warning: include directive removed (a score may not "
                        f"read other files): {m.group(0).strip()[:80]}")
    return (_INCLUDE.sub("%", text), problems) if problems else (text, problems)


def _has_music(body: str) -> bool:
    """Whether a tune has a K: field followed by a non-empty, non-field line (else abc2midi
    would be started for a tune that cannot hold a note)."""
    m = _KEY_LINE.search(body)
    if not m:
        return False
    rest = body[m.end():].split("\n", 1)
    return len(rest) > 1 and any(
        line.strip() and not re.match(r"^([A-Za-z]:|%)", line) for line in rest[1].split("\n"))


@dataclass
class Tune:
    """One tune (``X:`` block) of an ABC file. ``line`` is its 1-based first line in the file."""

    index: int
    line: int
    text: str
    title: str = ""
    score: symusic.Score | None = None
    messages: list[str] = field(default_factory=list)


def split_tunes(text: str) -> list[Tune]:
    """Split ABC text at ``X:`` lines; a file without ``X:`` is one tune."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    if not starts:
        starts = [0]
    header = text[: starts[0]] if starts[0] > 0 else ""
    # ABC 2.1 §2.2.2: musical fields of the file header (unit length, metre, tempo, directives)
    # apply to every tune; they are copied in after X: so each tune parses on its own.
    shared = [line.rstrip() for line in header.split("\n") if re.match(r"^([LMQIU]:|%%)", line)]
    tunes = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        body = text[start:end].strip("\n")
        body = "\n".join(line.rstrip() for line in body.split("\n"))
        if not body.strip():
            continue
        line = text.count("\n", 0, start) + 1
        if shared and _TUNE_START.match(body):
            x_line, _, rest = body.partition("\n")
            body = "\n".join([x_line, *shared, rest]) if rest else "\n".join([x_line, *shared])
        tunes.append(Tune(index=len(tunes), line=line, text=body, title=_title(body)))
    return tunes


def _title(tune_text: str) -> str:
    for line in tune_text.split("\n"):
        if line.startswith("T:"):
            return line[2:].strip()
    return ""


def parse_tune(tune: Tune, source: str) -> Tune:
    """Read one tune with symusic; native messages become ``source:line:col: ...`` strings.

    Raises :class:`ScoreError` when symusic fails or the tune holds no notes.
    """
    with captured_native_output() as out:
        try:
            score = symusic.Score.from_abc(tune.text)
        except Exception as err:
            score = None
            failure = str(err)
    tune.messages = [_relocate(line, tune.line, source) for line in out]
    if score is None:
        raise ScoreError(source, f"tune {tune.index + 1} ({tune.title or 'untitled'}): "
                                 f"{_failure_text(failure, tune.messages)}", tune.line)
    if score.note_num() == 0:
        first = next((m for m in tune.messages if ": error:" in m), None)
        detail = f"; first problem: {first}" if first else ""
        raise ScoreError(
            source, f"tune {tune.index + 1} ({tune.title or 'untitled'}) holds no notes{detail}", tune.line
        )
    tune.score = score
    return tune


_EXITED = re.compile(r"^Process exited with code (-?\d+)")
_NO_OUTPUT = re.compile(r"^abc2midi did not create ")
_OUT_OF_RANGE = re.compile(r"^Get (pitch|velocity|program)=(-?\d+)$")
_RANGES = {"pitch": "0-127", "velocity": "1-127", "program": "0-127"}


def _failure_text(failure: str, messages: list[str]) -> str:
    """symusic's error in words that hold for any machine: abc2midi's exit (its command line
    names this install's and temp paths) with its first error, and values out of MIDI's range."""
    first = next((x for x in messages if ": error:" in x), None)
    problem = f"; first problem: {first}" if first else ""
    if m := _EXITED.match(failure):
        return f"abc2midi failed (exit code {m.group(1)}){problem}"
    if _NO_OUTPUT.match(failure):
        return f"abc2midi wrote no MIDI{problem}"
    if m := _OUT_OF_RANGE.match(failure.strip()):
        kind, value = m.groups()
        return f"a {kind} of {value} after conversion, outside MIDI's {_RANGES[kind]}"
    return failure


def _relocate(message: str, first_line: int, source: str) -> str:
    m = _NATIVE_MSG.match(message.strip())
    if not m:
        return f"{source}:{first_line}: note: {message.strip()}"
    kind, line, col, text = m.groups()
    return f"{source}:{int(line) + first_line - 1}:{int(col) + 1}: {kind.lower()}: {text.strip()}"


def read_abc(text: str, source: str, *, max_tunes: int | None = None) -> tuple[list[Tune], list[str]]:
    """Parse every tune; returns ``(good tunes, problems)``. Raises if no tune is readable.

    Include directives are removed first (:func:`strip_includes`); tunes without a key and a
    line of music are skipped unread; more than ``max_tunes`` tunes is an error. Line ends are
    made ``\n`` first (old Macintosh files end lines with ``\r`` alone)."""
    text, problems = strip_includes(text.replace("\r\n", "\n").replace("\r", "\n"), source)
    tunes = split_tunes(text)
    if not tunes:
        raise ScoreError(source, "no ABC tune found (empty file or no X: header)")
    if max_tunes is not None and len(tunes) > max_tunes:
        raise ScoreError(source, f"too many tunes ({len(tunes)} > max_pieces {max_tunes})")
    good, failures = [], []
    for tune in tunes:
        if not _has_music(tune.text):  # not worth a reader run
            failures.append(str(ScoreError(source, f"tune {tune.index + 1} ({tune.title or 'untitled'}) holds "
                                                   f"no notes (no music after a K: field; not read)", tune.line)))
            continue
        try:
            good.append(parse_tune(tune, source))
        except ScoreError as err:
            failures.append(str(err))
    if not good:
        raise ScoreError(source, f"no readable tune among {len(tunes)}: {failures[0]}")
    problems += failures
    return good, problems


def shift_key_signatures(score: symusic.Score, semitones: int) -> None:
    """Move every key signature by ``semitones`` (spelled with at most 6 sharps or 5 flats)."""
    for ks in score.key_signatures:
        ks.key = (ks.key + 7 * semitones + 5) % 12 - 5


def transpose_tune(tune_text: str, score: symusic.Score, semitones: int) -> str:
    """ABC text of ``score`` moved by ``semitones``, keeping the original tune's header fields.

    The music is written by symusic's ``midi2abc`` from the shifted score, with the key signature
    moved too so that notes are spelled in the new key; ``X:``/``T:`` and the other descriptive
    fields of the original are kept, so the tune stays recognisable.
    """
    shifted = score.shift_pitch(semitones)
    shift_key_signatures(shifted, semitones)
    with captured_native_output():
        body = shifted.dumps_abc()
    keep = [line for line in tune_text.split("\n") if re.match(r"^[XTCOSRAZNH]:", line)]
    lines = [line for line in body.replace("\r\n", "\n").split("\n") if line.strip()]
    music = [line for line in lines if not re.match(r"^[XT]:", line)]
    return "\n".join(keep + music)
