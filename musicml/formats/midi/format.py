"""MIDI behind the :class:`~musicml.formats.base.Format` interface: files read with symusic,
pieces as the project's MIDI text (:mod:`musicml.formats.midi.text`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import symusic

from musicml.formats.base import ERROR, Diagnostic, Format, Piece, Reading, ScoreCheck
from musicml.formats.errors import ScoreError
from musicml.formats.midi import text as miditext
from musicml.formats.midi.columns import NoteColumns, note_columns
from musicml.formats.midi.reader import load_midi


@dataclass
class MidiPiece(Piece):
    """A MIDI piece with its score's note columns, made once for the text, the note table and
    the piece statistics (:mod:`musicml.formats.midi.columns`)."""

    columns: NoteColumns | None = field(default=None, compare=False, repr=False)


def midi_title(score: symusic.Score, source: str, columns: NoteColumns | None = None) -> str:
    """The file's stem, with up to four track names (those ``columns`` carry, where given)."""
    names = [n for n in (columns.names if columns is not None else (t.name for t in score.tracks)) if n]
    stem = path_stem(source)
    return stem if not names else f"{stem} ({', '.join(names[:4])})"


def path_stem(source: str) -> str:
    """``Path(source).stem`` without building a ``Path`` (it runs per file)."""
    name = source.rpartition("/")[2]
    if name in ("", "."):  # what Path normalizes away
        return Path(source).stem
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


class MidiFormat(Format):
    name = "midi"
    # .kar: karaoke MIDI (a standard MIDI file with lyrics); .rmi: RIFF MIDI (unwrapped)
    extensions = (".mid", ".midi", ".kar", ".smf", ".rmi")
    text_suffix = ".miditext"

    def read(self, data: bytes, source: str, *, grid: int | None = None, max_pieces: int | None = None,
             check: ScoreCheck | None = None) -> Reading:
        if not data:
            raise ScoreError(source, "empty file (0 bytes)")
        score = load_midi(data, source)
        if check:
            check(score, source)
        columns = note_columns(score)
        text = miditext.encode(score, columns=columns) if grid is None else miditext.encode(
            score, grid=grid, columns=columns)
        return Reading([MidiPiece(0, 0, midi_title(score, source, columns), text, score, columns)])

    def to_score(self, text: str, source: str = "<string>") -> symusic.Score:
        """Tolerant: tokens that do not parse are skipped (:meth:`validate` lists them)."""
        return miditext.decode(text)

    def transpose_all(self, text: str, shifts: Sequence[int], *, frets: int = 24) -> dict[int, str | None]:
        """Pitched tracks moved (drums stay), re-encoded on the text's own grid."""
        if not shifts:
            return {}
        score = miditext.decode(text)
        grid = miditext.read_grid(text)
        out: dict[int, str | None] = {}
        for k in shifts:
            moved = score.copy()
            for track in moved.tracks:
                if not track.is_drum:
                    track.shift_pitch(k, inplace=True)
            out[k] = miditext.encode(moved, grid=grid)
        return out

    def validate(self, text: str, source: str = "<string>") -> list[Diagnostic]:
        return [Diagnostic(ERROR, line, col, message, source) for line, col, message in miditext.problems(text)]
