"""Benchmark MIDI text encode/decode over POP909 files; prints one JSON object.

    python bench/bench_miditext.py [--files 200] [--grid 4] [--velocity-bins 8] [--repeat 3]

Figures: files/s, MB/s of text and ms per file for encode and decode (best of ``--repeat``
passes over the files, MIDI parsing excluded), characters and whitespace tokens per note;
``encode_with_columns``: encode given the score's note columns (as ingestion does, which makes
them once for the text, the note table and the statistics), and ``note_columns`` (making them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from symusic import Score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml.formats.midi.columns import note_columns  # noqa: E402
from musicml.formats.midi.text import decode, encode  # noqa: E402

CORPORA = Path(os.environ.get("MUSICML_CORPORA", ROOT.parent / "shared" / "corpora"))


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--velocity-bins", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    folder = CORPORA / "midi" / "pop909"
    if not folder.is_dir():
        print(json.dumps({"skipped": f"corpus not found at {folder}"}))
        return 0
    paths = sorted(folder.glob("*.mid"))[: args.files]
    scores = [Score(p) for p in paths]
    notes = sum(s.note_num() for s in scores)

    texts: list[str] = []

    def run_encode():
        texts[:] = [encode(s, grid=args.grid, velocity_bins=args.velocity_bins) for s in scores]

    def run_decode():
        for t in texts:
            decode(t)

    columns = [note_columns(s) for s in scores]

    def run_encode_with_columns():
        for s, c in zip(scores, columns):
            encode(s, grid=args.grid, velocity_bins=args.velocity_bins, columns=c)

    t_enc = best_of(args.repeat, run_encode)
    t_dec = best_of(args.repeat, run_decode)
    t_enc_cols = best_of(args.repeat, run_encode_with_columns)
    t_cols = best_of(args.repeat, lambda: [note_columns(s) for s in scores])
    chars = sum(len(t) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    tokens = sum(len(t.split()) for t in texts)
    n = len(scores)
    result = {
        "bench": "miditext",
        "corpus": "pop909",
        "files": n,
        "notes": notes,
        "grid": args.grid,
        "velocity_bins": args.velocity_bins,
        "text_mb": round(nbytes / 1e6, 3),
        "chars_per_note": round(chars / notes, 2),
        "tokens_per_note": round(tokens / notes, 2),
        "encode": {
            "files_per_s": round(n / t_enc, 1),
            "mb_per_s": round(nbytes / 1e6 / t_enc, 2),
            "ms_per_file": round(1e3 * t_enc / n, 2),
        },
        "encode_with_columns": {"ms_per_file": round(1e3 * t_enc_cols / n, 3)},
        "note_columns": {"ms_per_file": round(1e3 * t_cols / n, 3)},
        "decode": {
            "files_per_s": round(n / t_dec, 1),
            "mb_per_s": round(nbytes / 1e6 / t_dec, 2),
            "ms_per_file": round(1e3 * t_dec / n, 2),
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
