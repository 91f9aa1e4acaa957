"""The one error type readers raise: it names the file and, for text, the line and column."""

from __future__ import annotations


class ScoreError(ValueError):
    """A score could not be read. ``str(err)`` is ``source[:line[:col]]: message``."""

    def __init__(self, source: str, message: str, line: int | None = None, col: int | None = None):
        self.source, self.message, self.line, self.col = source, message, line, col
        where = source
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        super().__init__(f"{where}: {message}")
