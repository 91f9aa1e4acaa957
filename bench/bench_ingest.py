"""Ingestion throughput beside raw symusic parsing of the same files, in the same process.

    python bench/bench_ingest.py [--corpora ../shared/corpora] [--midi 300] [--abc 200] [--atex 200]

Prints JSON: files/s and MB/s of a first ingestion of the mixed files (hash, decode, parse,
note tables, MIDI text, cache writes) and of a re-run (everything cached); then per format, the
ingestion of that format's files alone beside symusic reading the same pieces (MIDI bytes; every
ABC tune) in the same process: ``ratio_vs_symusic`` is ingestion time over symusic time
(alphaTex has no library baseline; its ingestion, with the project's own parser, is timed).
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
from musicml.formats.abc import split_tunes
from musicml.formats.native import captured_native_output
from musicml.ingest import ingest, load_parsed
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]


def pick(corpora: Path, n_midi: int, n_abc: int, n_atex: int) -> list[Path]:
    midi = sorted((corpora / "midi" / "pop909").glob("*.mid"))[:n_midi]
    abc = sorted((corpora / "abc" / "music21").rglob("*.abc"))[:n_abc]
    atex = sorted((corpora / "alphatex").rglob("*.atex"))[:n_atex]
    return midi + abc + atex


def symusic_baseline(files: list[Path], fmt: str) -> tuple[float, int]:
    """Seconds for symusic alone to read ``files`` the way ingestion must, and pieces read.

    MIDI: ``Score.from_midi`` on the bytes. ABC: ``Score.from_abc`` on every tune (symusic reads
    one tune per call, so a collection file is split at its ``X:`` lines first, as ingestion does).
    """
    t0 = time.perf_counter()
    pieces = 0
    with captured_native_output():
        for f in files:
            try:
                if fmt == "midi":
                    symusic.Score.from_midi(f.read_bytes())
                    pieces += 1
                else:
                    for tune in split_tunes(f.read_text(encoding="utf-8", errors="replace")):
                        symusic.Score.from_abc(tune.text)
                        pieces += 1
            except Exception:
                pass
    return time.perf_counter() - t0, pieces


def copy_in(files: list[Path], raw: Path) -> None:
    for i, f in enumerate(files):
        dst = raw / f"{i:05d}_{f.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)


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
    total_bytes = sum(f.stat().st_size for f in files)
    out: dict = {"files": len(files), "mb": round(total_bytes / 1e6, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake.from_env(Path(tmp) / "lake", Path(tmp) / "raw")
        copy_in(files, lake.raw_dir)
        first = ingest(lake)
        again = ingest(lake, previous=first.files)
        out["status"] = first.counts()
        out["ingest_first"] = {"seconds": round(first.seconds, 3),
                               "files_per_s": round(len(files) / first.seconds, 1),
                               "mb_per_s": round(total_bytes / 1e6 / first.seconds, 3)}
        out["ingest_rerun_cached"] = {"seconds": round(again.seconds, 3),
                                      "files_per_s": round(len(files) / again.seconds, 1),
                                      "parsed": again.parsed}
        for fmt in ("midi", "abc", "atex"):
            group = [f for f in files if detect_format(f) == fmt]
            if not group:
                continue
            lk = Lake.from_env(Path(tmp) / f"lake_{fmt}", Path(tmp) / f"raw_{fmt}")
            copy_in(group, lk.raw_dir)
            result = ingest(lk)
            pieces = load_parsed(lk, result.files)[0].height
            row = {"files": len(group), "mb": round(sum(f.stat().st_size for f in group) / 1e6, 3),
                   "pieces": pieces, "ingest_seconds": round(result.seconds, 3),
                   "ingest_files_per_s": round(len(group) / result.seconds, 1),
                   "ingest_ms_per_piece": round(1000 * result.seconds / max(pieces, 1), 3)}
            if fmt != "atex":  # alphaTex has no library to compare with: its own parser is timed
                t_sym, sym_pieces = symusic_baseline(group, fmt)
                row.update({"symusic_seconds": round(t_sym, 3), "symusic_pieces": sym_pieces,
                            "symusic_ms_per_piece": round(1000 * t_sym / max(sym_pieces, 1), 3),
                            "ratio_vs_symusic": round(result.seconds / t_sym, 2)})
            out[fmt] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
