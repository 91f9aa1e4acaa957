"""A hand-written single-pass alphaTex lexer.

Mirrors alphaTab's ``AlphaTexLexer``: the terminal characters ``/ " ' . : ( ) { } | * \\`` and
whitespace end a word; every other character (letters, digits, ``-``, ``#``, unicode, ...) is
part of a word. A word that is ``-?[0-9]+`` is a number, anything else an identifier, so
``12.3.16`` is ``NUMBER DOT NUMBER DOT NUMBER`` and ``-`` alone is the identifier ``-``
(a tied note). Floats are not lexed here: the parser joins ``NUMBER DOT NUMBER`` written
without spaces where a float is expected (alphaTab's ``extendToFloat``), because out of
context ``1.5`` is a fret on a string.

The scanner dispatches on the first character of each token; runs (whitespace, words, string
bodies) are matched with anchored character-class regexes, which are linear: there is no
backtracking anywhere. Comments are dropped. Lexical errors become diagnostics and the
scanner carries on.
"""

from __future__ import annotations

import re

from musicml.formats.alphatex.diagnostics import ERROR, WARNING, Diagnostic

# token kinds (small ints: compared in the parser's hot loops)
EOF = 0
TAG = 1  # \name or \\name ; value: the name as written
IDENT = 2
NUMBER = 3  # value: the digits as written ("-12", "007")
STRING = 4  # value: the decoded text
DOT = 5
COLON = 6
LPAREN = 7
RPAREN = 8
LBRACE = 9
RBRACE = 10
PIPE = 11
STAR = 12

KIND_NAMES = {
    EOF: "end of file",
    TAG: "metadata tag",
    IDENT: "identifier",
    NUMBER: "number",
    STRING: "string",
    DOT: "'.'",
    COLON: "':'",
    LPAREN: "'('",
    RPAREN: "')'",
    LBRACE: "'{'",
    RBRACE: "'}'",
    PIPE: "'|'",
    STAR: "'*'",
}

_PUNCT = {
    ".": DOT,
    ":": COLON,
    "(": LPAREN,
    ")": RPAREN,
    "{": LBRACE,
    "}": RBRACE,
    "|": PIPE,
    "*": STAR,
}
_WS_CHARS = " \t\n\r\v"
_WS = re.compile(r"[ \t\n\r\v]+")
# identifier characters: anything but the terminals, whitespace and NUL ('-' is allowed)
_WORD = re.compile(r"[^/\"'.:(){}|*\\ \t\n\r\v\x00]+")
_INT = re.compile(r"-?[0-9]+")
# longest number kept as written: every alphaTex number (fret, string, duration, tempo, ...) is
# far shorter, and a longer one (thousands of digits) would be costly, or refused, to convert
MAX_NUMBER_DIGITS = 18
_DQ_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.S)
_SQ_BODY = re.compile(r"(?:[^'\\]|\\.)*", re.S)
_ESCAPES = {"\\": "\\", "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")

# a token: (kind, value, start offset, end offset, line, col)
Token = tuple


def _decode_escapes(
    body: str, quote: str, line: int, col: int, diags: list[Diagnostic], source: str
) -> str:
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        j = body.find("\\", i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        c = body[j + 1] if j + 1 < n else ""
        if c == quote:
            out.append(quote)
            i = j + 2
        elif c in _ESCAPES and c:
            out.append(_ESCAPES[c])
            i = j + 2
        elif c == "u":
            hx = body[j + 2 : j + 6]
            if _HEX4.fullmatch(hx):
                out.append(chr(int(hx, 16)))
                i = j + 6
            else:
                diags.append(
                    Diagnostic(
                        ERROR,
                        line,
                        col,
                        "invalid \\uXXXX escape in string (need 4 hex digits)",
                        source,
                    )
                )
                i = j + 2
        else:
            diags.append(
                Diagnostic(
                    ERROR,
                    line,
                    col,
                    f"unsupported escape sequence '\\{c}' in string (expected \\n, \\r, \\t, \\\\, \\{quote} or \\uXXXX)",
                    source,
                )
            )
            out.append(c)
            i = j + 2
    return "".join(out)


def tokenize(text: str, source: str = "<string>") -> tuple[list[Token], list[Diagnostic]]:
    """Tokens of ``text`` (always ending with an EOF token) and the lexical diagnostics. Lines
    end at ``\n``, ``\r\n`` or a lone ``\r`` (old Macintosh files)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    tokens: list[Token] = []
    diags: list[Diagnostic] = []
    append = tokens.append
    n = len(text)
    pos = 0
    line = 1
    line_start = 0  # offset of the first character of the current line
    ws_match = _WS.match
    word_match = _WORD.match
    int_full = _INT.fullmatch
    punct = _PUNCT
    count = text.count
    rfind = text.rfind

    while pos < n:
        c = text[pos]
        if c in _WS_CHARS:
            end = ws_match(text, pos).end()
            nl = count("\n", pos, end)
            if nl:
                line += nl
                line_start = rfind("\n", pos, end) + 1
            pos = end
            continue
        kind = punct.get(c)
        if kind is not None:
            append((kind, c, pos, pos + 1, line, pos - line_start + 1))
            pos += 1
            continue
        if c == "/":
            nxt = text[pos + 1] if pos + 1 < n else ""
            if nxt == "/":
                end = text.find("\n", pos)
                pos = n if end < 0 else end
                continue
            if nxt == "*":
                end = text.find("*/", pos + 2)
                if end < 0:
                    diags.append(
                        Diagnostic(
                            WARNING,
                            line,
                            pos - line_start + 1,
                            "unterminated block comment '/*' runs to the end of the file",
                            source,
                        )
                    )
                    end = n
                else:
                    end += 2
                nl = count("\n", pos, end)
                if nl:
                    line += nl
                    line_start = rfind("\n", pos, end) + 1
                pos = end
                continue
            diags.append(
                Diagnostic(
                    ERROR,
                    line,
                    pos - line_start + 1,
                    "unexpected character '/' (comments start with '//' or '/*')",
                    source,
                )
            )
            pos += 1
            continue
        if c == '"' or c == "'":
            col = pos - line_start + 1
            body_re = _DQ_BODY if c == '"' else _SQ_BODY
            m = body_re.match(text, pos + 1)
            end = m.end()
            if end >= n or text[end] != c:
                # unterminated: report at the opening quote, resume after that line
                diags.append(Diagnostic(ERROR, line, col, "unterminated string literal", source))
                eol = text.find("\n", pos)
                eol = n if eol < 0 else eol
                append((STRING, text[pos + 1 : eol], pos, eol, line, col))
                pos = eol
                continue
            body = m.group()
            if "\\" in body:
                body = _decode_escapes(body, c, line, col, diags, source)
            append((STRING, body, pos, end + 1, line, col))
            nl = count("\n", pos, end)
            if nl:
                line += nl
                line_start = rfind("\n", pos, end) + 1
            pos = end + 1
            continue
        if c == "\\":
            col = pos - line_start + 1
            start = pos
            pos += 1
            if pos < n and text[pos] == "\\":
                pos += 1
            m = word_match(text, pos)
            if m is None:
                diags.append(
                    Diagnostic(ERROR, line, col, "missing metadata name after '\\'", source)
                )
                continue
            pos = m.end()
            append((TAG, m.group(), start, pos, line, col))
            continue
        m = word_match(text, pos)
        if m is None:  # NUL or another non-word character: skip it
            diags.append(
                Diagnostic(WARNING, line, pos - line_start + 1, f"ignored character {c!r}", source)
            )
            pos += 1
            continue
        word = m.group()
        end = m.end()
        if int_full(word):
            digits = len(word) - (word[0] == "-")
            if digits > MAX_NUMBER_DIGITS:
                diags.append(Diagnostic(ERROR, line, pos - line_start + 1,
                                        f"number too long ({digits} digits; at most {MAX_NUMBER_DIGITS})", source))
                word = word[:len(word) - digits + MAX_NUMBER_DIGITS]  # kept short: the text is refused anyway
            append((NUMBER, word, pos, end, line, pos - line_start + 1))
        else:
            append((IDENT, word, pos, end, line, pos - line_start + 1))
        pos = end

    eof = (EOF, "", n, n, line, n - line_start + 1)
    tokens.extend((eof, eof, eof))  # padding: the parser may look two tokens ahead
    return tokens, diags
