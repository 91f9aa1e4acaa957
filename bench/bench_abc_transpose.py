"""Benchmark the text-level ABC transposer against symusic's midi2abc round trip.

Prints JSON: tunes, shifts, mean milliseconds per transposition for ``transpose_abc`` and (on a
small sample) for ``musicml.formats.abc.transpose_tune``, plus how many tunes gave None.
Run: ``python bench/bench_abc_transpose.py [file.abc ...]`` (default: the shared irish.abc).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml.formats.abc import parse_tune, split_tunes, transpose_tune  # noqa: E402
from musicml.formats.abc.transpose import transpose_abc  # noqa: E402
from musicml.formats.errors import ScoreError  # noqa: E402

SHIFTS = (-3, -2, -1, 1, 2, 3)


def main() -> int:
    corpora = Path(os.environ.get("MUSICML_CORPORA", ROOT.parent / "shared" / "corpora"))
    paths = [Path(p) for p in sys.argv[1:]] or [corpora / "abc" / "irish.abc"]
    paths = [p for p in paths if p.exists()]
    if not paths:
        print(json.dumps({"skipped": "corpus not found"}))
        return 0
    tunes = [t for p in paths for t in split_tunes(p.read_text(errors="replace"))]
    nones = 0
    start = time.perf_counter()
    for tune in tunes:
        for k in SHIFTS:
            nones += transpose_abc(tune.text, k) is None
    text_s = time.perf_counter() - start
    sample = []
    for tune in tunes[:50]:
        try:
            sample.append(parse_tune(tune, "bench"))
        except ScoreError:
            pass
    start = time.perf_counter()
    for tune in sample:
        for k in SHIFTS:
            transpose_tune(tune.text, tune.score, k)
    midi_s = time.perf_counter() - start
    n = len(tunes) * len(SHIFTS)
    print(
        json.dumps(
            {
                "tunes": len(tunes),
                "shifts": list(SHIFTS),
                "transpose_abc_ms": round(1000 * text_s / max(n, 1), 4),
                "transpose_tune_ms": round(1000 * midi_s / max(len(sample) * len(SHIFTS), 1), 4),
                "none": nones,
                "chars_per_tune": round(sum(len(t.text) for t in tunes) / max(len(tunes), 1)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
