"""The seed run's schedule on alphaTex, and the earlier efforts' baselines at equal wall time.

    python bench/bench_baselines.py [--corpus ../shared/corpora/alphatex] [--steps 1000] [--work DIR]

1. Builds a lake from every ``.atex`` file of the corpus with the pipeline's own steps
   (ingest, dedup, pitch-shift augmentation -3..+3, splits by work).
2. GPT, the nanochat alphaTex run's shape and schedule: BPE 8192, d4 (4 layers, 128 wide),
   seq 512, 4096-token batches, ``--steps`` steps (1000), Muon + AdamW. Its wall time is W.
3. A char-level LSTM (the MIT music lab's: embedding 256, hidden 1024, Adam) and a char-level
   bigram, each trained for W seconds (warmdown over the time budget) on the same splits.
Every model's val and test bits-per-byte are measured over the whole split (bytes are UTF-8
bytes of the text, so BPE and char models compare), beside each tokenizer's unigram baseline.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicml import shards, workflow  # noqa: E402
from musicml.checkpoint import load_model  # noqa: E402
from musicml.curate.splits import SplitConfig  # noqa: E402
from musicml.evaluate import bits_per_byte, unigram_bpb  # noqa: E402
from musicml.lake import Lake  # noqa: E402
from musicml.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_data(lake: Lake, corpus: Path, split_seed: int = 0) -> dict:
    lake.raw_dir.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(corpus.rglob("*.atex"))):
        shutil.copyfile(f, lake.raw_dir / f"{i:04d}_{f.name}")
    t0 = time.perf_counter()
    result, _ = workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    dedup = workflow.dedup_step(lake)
    aug = workflow.augment_step(lake)
    summary = workflow.split_step(lake, SplitConfig(seed=split_seed))
    return {"files": result.counts(), "dedup": dedup.counts, "augment": aug.counts,
            "splits": summary.to_dicts(), "data_seconds": round(time.perf_counter() - t0, 1)}


def tokenize(lake: Lake, kind: str, **kw) -> dict:
    codec = workflow.tokenizer_step(lake, kind=kind, **kw)
    manifest = workflow.shards_step(lake)
    return {"kind": kind, "vocab_size": codec.vocab_size, "bos_id": codec.bos_id,
            "tokens": {s: v["tokens"] for s, v in manifest["splits"].items()},
            "bytes_per_token_train": round(manifest["bytes"]["train"] / manifest["splits"]["train"]["tokens"], 3)}


def run(lake: Lake, name: str, cfg: TrainConfig, tok: dict) -> dict:
    shard_dir = lake.path("shards")
    tb = np.load(lake.path("tokenizer", "token_bytes.npy"), allow_pickle=False)
    out = lake.path("models", name)
    t0 = time.perf_counter()
    result = train(cfg, shard_dir, out, bos_id=tok["bos_id"], token_bytes=tb)
    wall = time.perf_counter() - t0
    model, _ = load_model(result.checkpoint)
    figures = {"family": cfg.family, "steps": result.steps, "tokens_seen": result.tokens_seen,
               "wall_s": round(wall, 1), "params": sum(p.numel() for p in model.parameters())}
    train_paths = shards.shard_paths(shard_dir, "train")
    for split, key in (("valid", "val"), ("test", "test")):
        paths = shards.shard_paths(shard_dir, split)
        figures[f"{key}_bpb"] = round(bits_per_byte(model, paths, tb, seq_len=cfg.seq_len, batch_size=8), 4)
        figures[f"unigram_{key}_bpb"] = round(unigram_bpb(train_paths, paths, tb), 4)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "alphatex")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-baselines-"))
    bpe_lake = Lake.from_env(work / "bpe")
    report: dict = {"corpus": str(args.corpus), "threads": torch.get_num_threads(), "work": str(work)}
    report["data"] = build_data(bpe_lake, args.corpus)
    report["bpe"] = tokenize(bpe_lake, "bpe", vocab_size=8192, pretokenizer="music")
    char_lake = Lake.from_env(work / "char")
    shutil.copytree(bpe_lake.path("curated"), char_lake.dir("curated"), dirs_exist_ok=True)
    report["char"] = tokenize(char_lake, "char")
    gpt = TrainConfig(family="gpt", model={"n_layer": 4, "n_embd": 128, "n_head": 2}, seq_len=512,
                      device_batch_size=8, total_batch_tokens=4096, max_steps=args.steps,
                      eval_every=0, checkpoint_every=0, seed=0)
    report["gpt_d4"] = run(bpe_lake, "gpt", gpt, report["bpe"])
    print(json.dumps(report), file=sys.stderr, flush=True)
    budget = report["gpt_d4"]["wall_s"]
    lstm = TrainConfig(family="lstm", model={"embed_dim": 256, "hidden_dim": 1024}, seq_len=256,
                       device_batch_size=16, max_steps=10**9, time_budget_s=budget, lr_schedule="time",
                       lr=5e-3, eval_every=0, checkpoint_every=0, seed=0)
    report["lstm_char"] = run(char_lake, "lstm", lstm, report["char"])
    print(json.dumps(report), file=sys.stderr, flush=True)
    bigram = TrainConfig(family="bigram", seq_len=256, device_batch_size=16, max_steps=10**9,
                         time_budget_s=budget, lr_schedule="time", lr=1e-2, eval_every=0,
                         checkpoint_every=0, seed=0)
    report["bigram_char"] = run(char_lake, "bigram", bigram, report["char"])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
