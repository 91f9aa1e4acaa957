"""Small helpers that turn library results into Dagster UI metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl


def md_table(df: pl.DataFrame, limit: int = 10, width: int = 80) -> dg.MetadataValue:
    """A markdown preview of the first ``limit`` rows, long cells cut to ``width`` characters."""
    if df.is_empty():
        return dg.MetadataValue.md("_(no rows)_")
    head = df.head(limit)
    cols = head.columns

    def cell(v: Any) -> str:
        s = "" if v is None else str(v)
        s = s.replace("\n", "⏎").replace("|", "\\|")
        return s if len(s) <= width else s[: width - 1] + "…"

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if len(df) > limit:
        lines.append(f"\n_{len(df) - limit} more rows_")
    return dg.MetadataValue.md("\n".join(lines))


def counts_md(counts: dict[str, Any], title: str = "") -> dg.MetadataValue:
    lines = [f"**{title}**", ""] if title else []
    lines += ["| what | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))


def path_md(path: Path) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))


def image_md(path: Path, alt: str = "") -> dg.MetadataValue:
    """Inline a small PNG in the UI (as a data URI)."""
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def throttled_progress(context: dg.AssetExecutionContext, what: str, unit: str, every_s: float = 10.0):
    """A progress callback that logs ``done/total`` with a rate at most every ``every_s`` seconds."""
    import time

    t0 = last = time.perf_counter()

    def progress(done: int, total: int, *_: Any) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every_s or done == total:
            last = now
            context.log.info(f"{what}: {done}/{total} {unit} ({done / max(now - t0, 1e-9):.1f}/s)")

    return progress
