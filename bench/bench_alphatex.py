"""Benchmark the alphaTex implementation on the whole shared alphaTex corpus.

Prints JSON: files, bytes, and for parse, serialize and to_score the seconds and MB/s
(MB = 10**6 bytes of source text), plus error and round-trip counts.
Run: ``python bench/bench_alphatex.py [corpus_dir]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml.formats.alphatex import parse, serialize, to_score  # noqa: E402


def main() -> int:
    default = (
        Path(os.environ.get("MUSICML_CORPORA", ROOT.parent / "shared" / "corpora")) / "alphatex"
    )
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not corpus.exists():
        print(json.dumps({"skipped": f"corpus not found at {corpus}"}))
        return 0
    files = sorted(corpus.rglob("*.atex"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    mb = nbytes / 1e6

    t0 = time.perf_counter()
    results = [parse(t, str(f)) for t, f in zip(texts, files)]
    t_parse = time.perf_counter() - t0

    t0 = time.perf_counter()
    canon = [serialize(r.ast) for r in results]
    t_ser = time.perf_counter() - t0

    t0 = time.perf_counter()
    notes = sum(to_score(r.ast).note_num() for r in results)
    t_score = time.perf_counter() - t0

    round_trip = sum(parse(c).ast == r.ast for c, r in zip(canon, results))
    out = {
        "files": len(files),
        "bytes": nbytes,
        "files_with_errors": sum(not r.ok for r in results),
        "errors": sum(len(r.errors) for r in results),
        "round_trip_equal": round_trip,
        "notes": notes,
        "parse": {"seconds": round(t_parse, 3), "MB/s": round(mb / t_parse, 3)},
        "serialize": {"seconds": round(t_ser, 3), "MB/s": round(mb / t_ser, 3)},
        "to_score": {"seconds": round(t_score, 3), "MB/s": round(mb / t_score, 3)},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
