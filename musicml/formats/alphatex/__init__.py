"""alphaTex: alphaTab's text format for guitar tabs and scores, implemented in pure Python.

No Python library reads alphaTex (alphaTab itself is TypeScript/C#/Kotlin), so this package is
the project's own implementation, written against alphaTab's documentation and its importer
and exporter sources (alphaTab 1.7/1.8):

* :func:`parse` - hand-written lexer and recursive-descent parser to a typed tree
  (:mod:`.ast`), with diagnostics (line, column, severity, message) and error recovery;
* :func:`serialize` / :func:`normalize` - canonical text (parse, serialize, parse gives the
  same tree), used to normalize text before dedup;
* :func:`to_score` - notes as a ``symusic.Score`` (ticks, tpq 480);
* :func:`from_score` - MIDI to alphaTex for guitar-range parts (strings and frets by
  dynamic programming over playable positions);
* :func:`transpose` - shift by semitones keeping every note playable, or None;
* :func:`validate` - syntax and semantic errors plus musical warnings (bars that do not fill
  their time signature);
* :data:`.pretokenize.ALPHATEX_PRETOKENIZE_PATTERN` - a pre-tokenization regex for BPE.
"""

from __future__ import annotations

from musicml.formats.alphatex.ast import Score
from musicml.formats.alphatex.diagnostics import AlphaTexError, Diagnostic
from musicml.formats.alphatex.parser import ParseResult, parse
from musicml.formats.alphatex.serializer import serialize


def normalize(text: str, source: str = "<string>") -> str:
    """Canonical text of ``text``; raises :class:`AlphaTexError` when it has errors."""
    result = parse(text, source)
    if not result.ok:
        raise AlphaTexError(result.diagnostics, source)
    return serialize(result.ast)


from musicml.formats.alphatex.midi_import import from_score  # noqa: E402
from musicml.formats.alphatex.notes import to_score  # noqa: E402
from musicml.formats.alphatex.transpose import transpose  # noqa: E402
from musicml.formats.alphatex.validate import validate  # noqa: E402

__all__ = [
    "AlphaTexError",
    "Diagnostic",
    "ParseResult",
    "Score",
    "from_score",
    "normalize",
    "parse",
    "serialize",
    "to_score",
    "transpose",
    "validate",
]
