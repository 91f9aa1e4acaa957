"""Diagnostics: an error or warning at a position of a text, shared by every format."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a text: ``source:line:col: severity: message`` (line and col 1-based)."""

    severity: str
    line: int
    col: int
    message: str
    source: str = "<string>"

    def format(self) -> str:
        return f"{self.source}:{self.line}:{self.col}: {self.severity}: {self.message}"

    def __str__(self) -> str:
        return self.format()

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR
