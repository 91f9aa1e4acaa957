"""Re-ingestion cost grows with the new files, not the corpus: the time to ingest one new file
into drop zones of 100, 1,000 and 3,000 files (POP909, its versions and the MIDI edge cases
of ../shared/corpora/midi; music21's ABC corpus where those are absent).

    python bench/bench_incremental.py [--corpora ../shared/corpora] [--sizes 100,1000,3000]

One lake grows through the sizes: at each, the drop zone is filled to that many files and
ingested (the parse cache fills), then timed in the same process: a re-run with nothing new
(the baseline: listing, hashing and the files table) and three runs, each after one new file is
added (median printed). A warm-up ingestion first pays the worker start-up and imports. Prints JSON, one object per size, and the ratio of the largest size's one-new-file
time to the smallest's (1.0: independent of the corpus; N/100: a full re-parse).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from musicml import workflow
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3  # new files timed one by one at each size (the median is printed)


def corpus(corpora: Path) -> list[Path]:
    """Every MIDI of the shared corpora, else music21's ABC files (sorted: the same order each run)."""
    midi = sorted(p for p in (corpora / "midi").rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())
    if midi:
        return midi
    from musicml.ingest.corpus import music21_abc_files

    return sorted(music21_abc_files())


def timed_ingest(lake: Lake) -> tuple[float, int]:
    """Seconds of one ingestion of the drop zone, and files parsed by it."""
    start = time.perf_counter()
    result, _ = workflow.ingest_step(lake, seed_default_corpus=False)
    return time.perf_counter() - start, result.parsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--sizes", default="100,1000,3000", help="drop-zone sizes, comma-separated, ascending")
    args = ap.parse_args()
    files = corpus(args.corpora)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Lake(root=Path(tmp) / "warm", raw_dir=Path(tmp) / "warm" / "raw")  # worker start-up, imports
        warm.raw_dir.mkdir(parents=True)
        shutil.copy(files[0], warm.raw_dir / files[0].name)
        timed_ingest(warm)
        lake = Lake(root=Path(tmp) / "lake", raw_dir=Path(tmp) / "lake" / "raw")
        lake.raw_dir.mkdir(parents=True)
        held_out = files[-REPEATS * len(sizes):]  # new files, never in the corpus before
        pool = files[: len(files) - len(held_out)]
        placed = added = 0
        for size in sizes:
            n = min(size, len(pool))
            for j, f in enumerate(pool[placed:n], placed):
                shutil.copy(f, lake.raw_dir / f"{j:05d}_{f.name}")
            placed = n
            settle_s, parsed = timed_ingest(lake)
            unchanged_s, _ = timed_ingest(lake)
            before = n + added
            one_new = []
            for _ in range(REPEATS):
                f = held_out[added]
                shutil.copy(f, lake.raw_dir / f"new_{added}_{f.name}")
                added += 1
                seconds, parsed_new = timed_ingest(lake)
                assert parsed_new == 1, parsed_new
                one_new.append(seconds)
            out.append({"files": before, "first_ingest_of_the_added_s": round(settle_s, 3),
                        "parsed_by_it": parsed, "rerun_nothing_new_s": round(unchanged_s, 4),
                        "one_new_file_s": round(statistics.median(one_new), 4),
                        "one_new_file_runs_s": [round(x, 4) for x in one_new]})
            print(json.dumps(out[-1]), flush=True)
    print(json.dumps({"corpus": "midi" if files[0].suffix.lower().startswith(".mid") else "abc",
                      "one_new_file_ratio_largest_vs_smallest": round(out[-1]["one_new_file_s"]
                                                                      / out[0]["one_new_file_s"], 2),
                      "size_ratio": round(out[-1]["files"] / out[0]["files"], 1)}))


if __name__ == "__main__":
    main()
