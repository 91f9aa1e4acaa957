"""Diagnostics (errors and warnings with a source position) and the exception that carries them."""

from __future__ import annotations

from musicml.formats.diagnostics import ERROR, WARNING, Diagnostic

__all__ = ["ERROR", "WARNING", "AlphaTexError", "Diagnostic"]


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
