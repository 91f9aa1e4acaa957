"""Diagnostics (errors and warnings with a source position) and the exception that carries them."""

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


class AlphaTexError(ValueError):
    """Raised where a text must be valid (``normalize``); carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic], source: str = "<string>"):
        self.diagnostics = list(diagnostics)
        self.source = source
        errors = [d for d in self.diagnostics if d.severity == ERROR]
        if errors:
            first = errors[0]
            more = f" ({len(errors)} errors in all)" if len(errors) > 1 else ""
            text = f"{first.format()}{more}"
        else:
            text = f"{source}: invalid alphaTex"
        super().__init__(text)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == ERROR]
