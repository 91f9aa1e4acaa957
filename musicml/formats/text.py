"""Decoding text scores: UTF-8 first, a legacy 8-bit fallback for old ABC collections."""

from __future__ import annotations

import re

from musicml.formats.errors import ScoreError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")
_C1 = re.compile(r"[\x7f-\x9f]")


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


def decode_text(data: bytes, source: str, *, allow_legacy: bool = True) -> tuple[str, str]:
    """Decode ``data`` to text; returns ``(text, encoding)``.

    UTF-16 and UTF-32 are read where their byte-order mark says so (UTF-16 without one is named
    as such); otherwise UTF-8 (a BOM is dropped) is tried first. Where it fails and
    ``allow_legacy`` is set, cp1252 is accepted if the result holds no control characters (old
    ABC collections are often Windows-1252); anything else raises :class:`ScoreError` naming the
    first bad byte's line and column.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for bom, encoding in _UNICODE_BOMS:  # what Windows editors save as "Unicode"
        if data.startswith(bom):
            return _decode_unicode(data[len(bom):], encoding, source), encoding.rstrip("-lbe")
    if _utf16_without_bom(data):
        raise ScoreError(source, "UTF-16 text without a byte-order mark (NUL bytes between the characters): "
                                 "save it as UTF-8, or as UTF-16 with its byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col(data, err.start)
        if allow_legacy:
            try:
                legacy = data.decode("cp1252")
            except UnicodeDecodeError:
                legacy = None
            if legacy is not None and not _has_control(legacy):
                return legacy, "cp1252"
        raise ScoreError(
            source, f"not valid UTF-8 text (byte 0x{data[err.start]:02x}: {err.reason})", line, col
        ) from None
    return _refuse_control(text, source), "utf-8"


def _refuse_control(text: str, source: str) -> str:
    """``text``, unless it holds a control character: then a :class:`ScoreError` at its place."""
    bad = _first_control(text)
    if bad is not None:
        line = text.count("\n", 0, bad) + 1
        col = bad - (text.rfind("\n", 0, bad) + 1) + 1
        raise ScoreError(source, f"binary data in a text file (control character U+{ord(text[bad]):04X})", line, col)
    return text


# UTF-32's little-endian mark begins with UTF-16's: it is looked for first
_UNICODE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                 (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _utf16_without_bom(data: bytes) -> bool:
    """Whether NUL bytes fill one byte of most pairs and almost none of the other (ASCII-range
    UTF-16), unlike binary data, whose NULs fall anywhere."""
    half = len(data) // 2
    if half < 2:
        return False
    even, odd = data[0::2].count(0), data[1::2].count(0)
    return max(even, odd) > 0.4 * half and min(even, odd) < 0.05 * half


def _decode_unicode(data: bytes, encoding: str, source: str) -> str:
    """Text after a UTF-16 or UTF-32 byte-order mark; a bad unit or a control character named
    with its line and column."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        good = data[: err.start].decode(encoding, errors="replace")
        line, col = good.count("\n") + 1, len(good) - (good.rfind("\n") + 1) + 1
        raise ScoreError(source, f"not valid {encoding.upper()[:6]} text ({err.reason})", line, col) from None
    return _refuse_control(text, source)


def _first_control(text: str) -> int | None:
    m = _CONTROL.search(text)
    return m.start() if m else None


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None or _C1.search(text) is not None
