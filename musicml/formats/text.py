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

    UTF-8 (a BOM is dropped) is tried first. Where it fails and ``allow_legacy`` is set, cp1252
    is accepted if the result holds no control characters (old ABC collections are often
    Windows-1252); anything else raises :class:`ScoreError` naming the first bad byte's line
    and column.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
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
    bad = _first_control(text)
    if bad is not None:
        line = text.count("\n", 0, bad) + 1
        col = bad - (text.rfind("\n", 0, bad) + 1) + 1
        raise ScoreError(source, f"binary data in a text file (control character U+{ord(text[bad]):04X})", line, col)
    return text, "utf-8"


def _first_control(text: str) -> int | None:
    m = _CONTROL.search(text)
    return m.start() if m else None


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None or _C1.search(text) is not None
