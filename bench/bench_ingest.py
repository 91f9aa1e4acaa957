"""Ingestion throughput beside raw symusic parsing of the same files, in the same process.

    python bench/bench_ingest.py [--corpora ../shared/corpora] [--midi 300] [--abc 200] [--atex 200]

Prints JSON: files/s and MB/s of a first ingestion (hash, decode, parse, note tables, cache
writes), of a re-run (everything cached), and of plain symusic parsing (MIDI bytes and whole
ABC files) of the same MIDI and ABC files; ``ratio_vs_symusic`` is ingestion time over symusic time
for the files symusic can read (alphaTex has no library baseline; its own parser is timed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import symusic

from musicml.formats import detect_format
from musicml.formats.native import captured_native_output
from musicml.ingest import ingest
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]


def pick(corpora: Path, n_midi: int, n_abc: int, n_atex: int) -> list[Path]:
    midi = sorted((corpora / "midi" / "pop909").glob("*.mid"))[:n_midi]
    abc = sorted((corpora / "abc" / "music21").rglob("*.abc"))[:n_abc]
    atex = sorted((corpora / "alphatex").rglob("*.atex"))[:n_atex]
    return midi + abc + atex


def symusic_baseline(files: list[Path]) -> float:
    t0 = time.perf_counter()
    with captured_native_output():
        for f in files:
            fmt = detect_format(f)
            try:
                if fmt == "midi":
                    symusic.Score.from_midi(f.read_bytes())
                elif fmt == "abc":
                    symusic.Score.from_abc(f.read_text(encoding="utf-8", errors="replace"))
            except Exception:
                pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--midi", type=int, default=300)
    ap.add_argument("--abc", type=int, default=200)
    ap.add_argument("--atex", type=int, default=200)
    args = ap.parse_args()
    if not args.corpora.exists():
        raise SystemExit(f"corpora not found at {args.corpora}")
    files = pick(args.corpora, args.midi, args.abc, args.atex)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        for i, f in enumerate(files):
            dst = raw / f"{i:05d}_{f.name}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
        lake = Lake.from_env(Path(tmp) / "lake", raw)
        total_bytes = sum(f.stat().st_size for f in files)
        symusic_files = [f for f in files if detect_format(f) in ("midi", "abc")]
        sym_bytes = sum(f.stat().st_size for f in symusic_files)
        t_sym = symusic_baseline(symusic_files)
        first = ingest(lake)
        again = ingest(lake, previous=first.files)
        # the same ingestion restricted to the symusic-readable files, for the ratio
        lake2 = Lake.from_env(Path(tmp) / "lake2", Path(tmp) / "raw2")
        for i, f in enumerate(symusic_files):
            dst = lake2.raw_dir / f"{i:05d}_{f.name}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
        sym_ingest = ingest(lake2)
    out = {
        "files": len(files),
        "mb": round(total_bytes / 1e6, 3),
        "status": first.counts(),
        "ingest_first": {"seconds": round(first.seconds, 3), "files_per_s": round(len(files) / first.seconds, 1),
                         "mb_per_s": round(total_bytes / 1e6 / first.seconds, 3)},
        "ingest_rerun_cached": {"seconds": round(again.seconds, 3), "files_per_s": round(len(files) / again.seconds, 1),
                                "parsed": again.parsed},
        "symusic_only": {"files": len(symusic_files), "mb": round(sym_bytes / 1e6, 3),
                         "symusic_seconds": round(t_sym, 3),
                         "symusic_files_per_s": round(len(symusic_files) / t_sym, 1),
                         "ingest_seconds": round(sym_ingest.seconds, 3),
                         "ingest_files_per_s": round(len(symusic_files) / sym_ingest.seconds, 1),
                         "ratio_vs_symusic": round(sym_ingest.seconds / t_sym, 2)},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
