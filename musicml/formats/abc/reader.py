"""ABC notation: split a file into tunes, read each with symusic, write transposed tunes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import symusic

from musicml.formats.errors import ScoreError
from musicml.formats.native import captured_native_output

_TUNE_START = re.compile(r"^X:", re.MULTILINE)
_NATIVE_MSG = re.compile(r"^(Error|Warning) in line-char (\d+)-(\d+) : (.*)$")


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
        raise ScoreError(source, f"tune {tune.index + 1} ({tune.title or 'untitled'}): {failure}", tune.line)
    if score.note_num() == 0:
        first = next((m for m in tune.messages if ": error:" in m), None)
        detail = f"; first problem: {first}" if first else ""
        raise ScoreError(
            source, f"tune {tune.index + 1} ({tune.title or 'untitled'}) holds no notes{detail}", tune.line
        )
    tune.score = score
    return tune


def _relocate(message: str, first_line: int, source: str) -> str:
    m = _NATIVE_MSG.match(message.strip())
    if not m:
        return f"{source}:{first_line}: note: {message.strip()}"
    kind, line, col, text = m.groups()
    return f"{source}:{int(line) + first_line - 1}:{int(col) + 1}: {kind.lower()}: {text.strip()}"


def read_abc(text: str, source: str) -> tuple[list[Tune], list[str]]:
    """Parse every tune; returns ``(good tunes, problems)``. Raises if no tune is readable."""
    tunes = split_tunes(text)
    if not tunes:
        raise ScoreError(source, "no ABC tune found (empty file or no X: header)")
    good, problems = [], []
    for tune in tunes:
        try:
            good.append(parse_tune(tune, source))
        except ScoreError as err:
            problems.append(str(err))
    if not good:
        raise ScoreError(source, f"no readable tune among {len(tunes)}: {problems[0]}")
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
