"""Re-ingestion cost grows with the new files, not the corpus: the time to ingest one new file
into drop zones of 100, 1,000 and 3,000 files (POP909, its versions and the MIDI edge cases
of ../shared/corpora/midi; music21's ABC corpus where those are absent).

    python bench/bench_incremental.py [--corpora ../shared/corpora] [--sizes 100,1000,3000]

One lake grows through the sizes: at each, the drop zone is filled to that many files and
ingested (the parse cache fills), then timed in the same process: a re-run with nothing new
(the baseline: listing the drop zone and the files table) and three runs, each after one new
file is added (median of 5 printed; the corpus files dated an hour back, as files waiting in a
drop zone are, the new one just written), first as a plain ingestion (every entry listed with an
``lstat``, unchanged files trusted by size and mtime), then as the drop-zone sensor requests it
(``IngestConfig.paths`` naming the new file: the other rows are carried over, checked against
the directory listing), each of those followed by the ``parsed_scores`` step
(:func:`musicml.workflow.parse_step`: the lake's pieces and note tables published with the new
file's parts, ``published_after_it``). A warm-up ingestion first pays the worker start-up and
imports. Prints JSON, one object per size (wall median and minimum, and this process's CPU time),
and the ratios of the largest size's one-new-file times to the smallest's (1.0: independent of
the corpus; N/100: a full re-parse).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from musicml import workflow
from musicml.ingest import IngestConfig
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5  # new files timed one by one at each size, each way (the median is printed)
# the corpus's files are dated an hour back, as files are that wait in a drop zone for the sensor:
# a file modified within ingestion's racy window (2 s) of a run is read again by the next one
AGED_NS = time.time_ns() - 3600 * 10**9


def corpus(corpora: Path) -> list[Path]:
    """Every MIDI of the shared corpora, else music21's ABC files (sorted: the same order each run)."""
    midi = sorted(p for p in (corpora / "midi").rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())
    if midi:
        return midi
    from musicml.ingest.corpus import music21_abc_files

    return sorted(music21_abc_files())


def unique_tail(files: list[Path], n: int) -> list[Path]:
    """The last ``n`` files whose bytes no other file has (a copy would not be parsed)."""
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    counts = collections.Counter(digests)
    return [f for f, d in zip(files, digests) if counts[d] == 1][-n:]


def timed_ingest(lake: Lake, config: IngestConfig | None = None) -> tuple[float, int, float]:
    """Seconds of one ingestion of the drop zone, files parsed by it, and CPU seconds of this
    process in it (the worker's parse excluded: what grows with the corpus is here, and CPU time
    is less disturbed than wall time by other work on the machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    result, _ = workflow.ingest_step(lake, config, seed_default_corpus=False)
    return time.perf_counter() - start, result.parsed, time.process_time() - cpu


def one_new_file(lake: Lake, src: Path, name: str, request: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wall and CPU seconds to ingest one new file ``src`` copied in as ``name`` (a plain
    ingestion, or a request naming just that file: ``paths``), and to publish the parsed tables
    after it (``parsed_scores``)."""
    shutil.copy(src, lake.raw_dir / name)
    seconds, parsed, cpu = timed_ingest(lake, IngestConfig(paths=(name,)) if request else None)
    assert parsed == 1, parsed
    start, c0 = time.perf_counter(), time.process_time()
    pieces, _ = workflow.parse_step(lake)
    assert name in set(pieces["path"].to_list())
    return (seconds, cpu), (time.perf_counter() - start, time.process_time() - c0)


def summary(runs: list[tuple[float, float]]) -> dict:
    wall, cpu = [w for w, _ in runs], [c for _, c in runs]
    return {"wall_median_s": round(statistics.median(wall), 4), "wall_min_s": round(min(wall), 4),
            "cpu_median_s": round(statistics.median(cpu), 4), "wall_runs_s": [round(x, 4) for x in wall]}


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
        held_out = unique_tail(files, 2 * REPEATS * len(sizes))  # new files, never in the corpus before
        pool = [f for f in files if f not in set(held_out)]
        placed = added = 0
        for size in sizes:
            n = min(size, len(pool))
            for j, f in enumerate(pool[placed:n], placed):
                shutil.copy(f, lake.raw_dir / f"{j:05d}_{f.name}")
                os.utime(lake.raw_dir / f"{j:05d}_{f.name}", ns=(AGED_NS, AGED_NS))
            placed = n
            settle_s, parsed, _ = timed_ingest(lake)
            unchanged_s, _, _ = timed_ingest(lake)
            before = n + added
            workflow.parse_step(lake)  # the tables of the corpus as it is
            runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            published: list[tuple[float, float]] = []
            for request in (False, True):
                for _ in range(REPEATS):
                    f = held_out[added]
                    ingested, publish = one_new_file(lake, f, f"new_{added}_{f.name}", request)
                    runs[request].append(ingested)
                    published.append(publish)
                    added += 1
            out.append({"files": before, "first_ingest_of_the_added_s": round(settle_s, 3),
                        "parsed_by_it": parsed, "rerun_nothing_new_s": round(unchanged_s, 4),
                        "one_new_file": summary(runs[False]), "one_new_file_requested": summary(runs[True]),
                        "published_after_it": summary(published)})
            print(json.dumps(out[-1]), flush=True)
    print(json.dumps({"corpus": "midi" if files[0].suffix.lower().startswith(".mid") else "abc",
                      **{f"ratio_largest_vs_smallest_{way}_{stat}": round(out[-1][way][stat] / out[0][way][stat], 2)
                         for way in ("one_new_file", "one_new_file_requested", "published_after_it")
                         for stat in ("wall_median_s", "wall_min_s", "cpu_median_s")},
                      "size_ratio": round(out[-1]["files"] / out[0]["files"], 1)}))


if __name__ == "__main__":
    main()
