"""What a lake on object storage costs a run: push and pull of a real lake's local copy
(:mod:`musicml.lake_sync`, on fsspec's memory filesystem), beside copying the same folder.

    python bench/bench_lake_sync.py [--corpora ../shared/corpora] [--limit 0]

The lake is the shared MIDI corpus ingested (drop zone, parse cache, files table; music21's ABC
files where the corpora are absent). Times, in this one process: the first push (every file),
a push with nothing changed (the cost every step pays: two listings), a pull into an empty copy
(a fresh machine), a pull with nothing changed, and a push then pull after one new file is
ingested; beside ``shutil.copytree`` of the same lake (a local copy of the bytes, the floor of
any full sync). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import fsspec
from bench_incremental import corpus  # the same files: the shared MIDI corpus, else music21's ABC

from musicml import lake_sync, workflow
from musicml.ingest import IngestConfig
from musicml.lake import Lake

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--limit", type=int, default=0, help="first N files (0: all)")
    args = ap.parse_args()
    files = corpus(args.corpora)
    files = files[:args.limit] if args.limit else files
    remote = f"memory://bench-sync-{uuid.uuid4().hex[:8]}/lake"
    with tempfile.TemporaryDirectory() as tmp:
        a = Lake(Path(tmp) / "a", Path(tmp) / "a" / "raw")
        a.raw_dir.mkdir(parents=True)
        for i, f in enumerate(files[:-1]):
            shutil.copy(f, a.raw_dir / f"{i:05d}_{f.name}")
        workflow.ingest_step(a, IngestConfig(), seed_default_corpus=False)
        held = lake_sync.local_files(a.root)
        n_files, n_bytes = len(held), sum(size for size, _ in held.values())
        copy_s, _ = timed(lambda: shutil.copytree(a.root, Path(tmp) / "copied"))
        push_s, pushed = timed(lambda: lake_sync.push(remote, a.root))
        noop_push_s, _ = timed(lambda: lake_sync.push(remote, a.root))
        pull_s, pulled = timed(lambda: lake_sync.pull(remote, Path(tmp) / "b"))
        noop_pull_s, _ = timed(lambda: lake_sync.pull(remote, Path(tmp) / "b"))
        shutil.copy(files[-1], a.raw_dir / f"new_{files[-1].name}")
        workflow.ingest_step(a, IngestConfig(paths=(f"new_{files[-1].name}",)), seed_default_corpus=False)
        one_push_s, one_pushed = timed(lambda: lake_sync.push(remote, a.root))
        one_pull_s, one_pulled = timed(lambda: lake_sync.pull(remote, Path(tmp) / "b"))
    fsspec.filesystem("memory").rm(remote.removeprefix("memory://").split("/")[0], recursive=True)
    print(json.dumps({
        "lake_files": n_files, "lake_mb": round(n_bytes / 1e6, 2), "drop_zone_files": len(files) - 1,
        "copytree_s": round(copy_s, 3),
        "push_all_s": round(push_s, 3), "push_all_x_copytree": round(push_s / copy_s, 2),
        "pushed": len(pushed.copied),
        "pull_all_s": round(pull_s, 3), "pull_all_x_copytree": round(pull_s / copy_s, 2),
        "pulled": len(pulled.copied),
        "push_nothing_changed_s": round(noop_push_s, 4), "pull_nothing_changed_s": round(noop_pull_s, 4),
        "after_one_new_file": {"push_s": round(one_push_s, 4), "pushed": len(one_pushed.copied),
                               "pull_s": round(one_pull_s, 4), "pulled": len(one_pulled.copied)},
    }, indent=2))


if __name__ == "__main__":
    main()
