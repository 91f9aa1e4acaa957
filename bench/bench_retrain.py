"""Incremental retraining: what adding ~2% new files costs with the tokenizer kept and the token
cache, against retraining the tokenizer and re-encoding every document (the old behaviour).

    python bench/bench_retrain.py                      # music21's 1,146 ABC files, 2% added
    python bench/bench_retrain.py --files 300 --train-steps 40   # smaller; also warm vs fresh training

A lake gets the corpus less every 50th file (``--new-every``); the data steps, the tokenizer and
the shards run once; the held-out files are added and the data steps run again. Then, in the
same process on the same lake:

- ``incremental``: ``tokenizer_step`` with ``retrain: auto`` (kept when it covers the new train
  split) and ``shards_step`` with the token cache: only documents with new text are encoded;
- ``uncached_shards``: ``shards_step(cache_tokens=False)`` with the same tokenizer, to check the
  shards are identical (same manifest digest) to a build that encodes everything;
- with ``--train-steps N``: N steps warm-started from the first training (``warm_start:
  latest``) and N fresh steps, both with the kept tokenizer, their val bpb estimates;
- ``scratch``: ``retrain: always`` and a new tokenizer's shards (every document encoded).

Prints JSON: seconds of each step for each way, ``scratch_over_incremental`` (tokenizer plus
shards), the keep decision with its figures, and whether the shards are identical.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(times: dict, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    times[name] = round(time.perf_counter() - t0, 2)
    return out


def data_steps(lake, times: dict) -> None:
    from musicml import workflow

    timed(times, "raw_scores", workflow.ingest_step, lake, seed_default_corpus=False)
    timed(times, "parsed_scores", workflow.parse_step, lake)
    timed(times, "deduped_scores", workflow.dedup_step, lake)
    timed(times, "augmented_scores", workflow.augment_step, lake)
    timed(times, "splits", workflow.split_step, lake)


def token_steps(lake, times: dict, vocab_size: int, retrain: str, cache_tokens: bool = True) -> dict:
    from musicml import workflow

    codec = timed(times, "tokenizer", workflow.tokenizer_step, lake, vocab_size=vocab_size, retrain=retrain)
    manifest = timed(times, "token_shards", workflow.shards_step, lake, cache_tokens=cache_tokens)
    times["total"] = round(times["tokenizer"] + times["token_shards"], 2)
    return {"codec": codec, "manifest": manifest}


def copy_files(files: list[Path], root: Path, raw: Path) -> None:
    for src in files:
        dst = raw / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def train(lake, uri: str, steps: int, warm_start: str) -> dict:
    from musicml import workflow
    from musicml.train import preset_config

    cfg = preset_config("cpu", max_steps=steps, eval_every=steps, checkpoint_every=0, device="cpu",
                        warm_start=warm_start)
    t0 = time.perf_counter()
    run = workflow.train_step(lake, cfg, tracking_uri=uri)
    first = next(json.loads(line)["val_bpb_estimate"] for line in (run.run_dir / "log.jsonl").read_text().splitlines()
                 if "val_bpb_estimate" in line)
    return {"seconds": round(time.perf_counter() - t0, 1), "val_bpb_at_step_0": round(first, 4),
            "val_bpb": round(run.result["val_bpb"], 4), "warm_started_from": bool(run.result["warm_started_from"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=None, help="first N files of music21's ABC corpus (default: all)")
    ap.add_argument("--new-every", type=int, default=50, help="every Nth file is held out and added later (2%%)")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--train-steps", type=int, default=0, help="also train N steps warm vs fresh (cpu preset)")
    args = ap.parse_args()

    import music21

    from musicml import workflow
    from musicml.ingest.corpus import music21_abc_files
    from musicml.lake import Lake

    corpus_root = Path(music21.__file__).parent / "corpus"
    files = music21_abc_files()[:args.files]
    new = [f for i, f in enumerate(files) if i % args.new_every == args.new_every // 2]
    base = [f for f in files if f not in set(new)]
    work = Path(tempfile.mkdtemp(prefix="musicml-bench-retrain-"))
    out: dict = {"files_first": len(base), "files_added": len(new)}
    try:
        lake = Lake.from_env(work / "lake", work / "lake" / "raw")
        uri = f"sqlite:///{lake.root / 'mlflow.db'}"
        copy_files(base, corpus_root, lake.raw_dir)
        first: dict = {}
        data_steps(lake, first)
        token_steps(lake, first, args.vocab_size, "auto")
        if args.train_steps:
            out["first_training"] = train(lake, uri, args.train_steps, "none")
        copy_files(new, corpus_root, lake.raw_dir)
        data_second: dict = {}
        data_steps(lake, data_second)
        out["first_run_s"], out["second_run_data_steps_s"] = first, data_second

        incremental: dict = {}
        inc = token_steps(lake, incremental, args.vocab_size, "auto")
        decision = inc["codec"].info["retrain"]
        uncached: dict = {}
        plain = timed(uncached, "token_shards", workflow.shards_step, lake, cache_tokens=False)
        out["identical_to_uncached_build"] = plain["digest"] == inc["manifest"]["digest"]
        if args.train_steps:
            out["warm_training"] = train(lake, uri, args.train_steps, "latest")
            out["fresh_training"] = train(lake, uri, args.train_steps, "none")
        scratch: dict = {}
        token_steps(lake, scratch, args.vocab_size, "always")
        out["incremental_s"] = {**incremental, "token_cache": inc["manifest"]["token_cache"]}
        out["uncached_shards_s"] = uncached["token_shards"]
        out["scratch_s"] = scratch
        out["scratch_over_incremental"] = round(scratch["total"] / max(incremental["total"], 1e-9), 2)
        figures = decision["figures"]
        out["decision"] = {"action": decision["action"], "reason": decision["reason"],
                           "bytes_per_token_now": figures.get("train_split", {}).get("bytes_per_token"),
                           "bytes_per_token_trained": figures.get("trained_on", {}).get("bytes_per_token"),
                           "encoded_by_tokenizer_step": figures.get("train_split", {}).get("cache", {}).get("encoded")}
        out["train_docs"] = figures.get("train_split", {}).get("documents")
        out["train_tokens"] = inc["manifest"]["splits"]["train"]["tokens"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
