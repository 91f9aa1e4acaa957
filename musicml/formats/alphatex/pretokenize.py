"""A music-aware pre-tokenization pattern for BPE on alphaTex text.

Use with HF tokenizers::

    from tokenizers import Regex, pre_tokenizers
    pre_tokenizers.Split(Regex(ALPHATEX_PRETOKENIZE_PATTERN), behavior="isolated")

Pieces: comments; quoted strings (bounded by the line); metadata keywords with their backslash
(``\\track``, ``\\tuning``); a dot, colon or star glued to the number after it (``.3`` string,
``.16`` duration, ``:8`` duration change, ``*4`` repeat); numbers (frets, values) and words
(effects, pitch names) with an optional leading space; single brackets, braces and bars;
whitespace runs. So ``12.3.16{h}`` is ``12`` ``.3`` ``.16`` ``{`` ``h`` ``}``. Every
alternative is a simple class run (no nested quantifiers), so matching is linear.
"""

from __future__ import annotations

ALPHATEX_PRETOKENIZE_PATTERN = (
    r"//[^\n]*"
    r"|/\*[\s\S]*?\*/"
    r'|"(?:[^"\\\n]|\\.)*"?'
    r"|'(?:[^'\\\n]|\\.)*'?"
    r"|\\\\?[A-Za-z][A-Za-z0-9_]*"
    r"|[.:*]-?[0-9]+"
    r"| ?-?[0-9]+"
    r"| ?[A-Za-z#][A-Za-z0-9#_+-]*"
    r"| ?[(){}|]"
    r"|\s+"
    r"|."
)

__all__ = ["ALPHATEX_PRETOKENIZE_PATTERN"]
