"""alphaTex BPE: the music-aware pre-tokenization against plain byte-level BPE (and nanochat's split).

    python bench/bench_tokenizers.py [--corpus ../shared/corpora/alphatex] [--steps 600] [--vocab 8192] [--split-seed 0]

Builds one lake from every ``.atex`` file of the corpus with the pipeline's own steps (ingest,
dedup, augmentation -3..+3, splits by work), then for each pre-tokenizer trains a BPE tokenizer
on the train split, writes the shards and trains the same GPT (d4: 4 layers, 128 wide, seq 512,
4096-token batches, ``--steps`` steps, Muon + AdamW). Figures per pre-tokenizer, on the valid
split: tokens per bar (bars counted by the alphaTex parser, every voice's bars), bytes per token,
and the GPT's val bits-per-byte beside the unigram baseline's. The lowest val bpb wins. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_baselines import build_data, run, tokenize  # noqa: E402

from musicml import workflow  # noqa: E402
from musicml.formats import alphatex  # noqa: E402
from musicml.lake import Lake  # noqa: E402
from musicml.tokenizers import load_codec  # noqa: E402
from musicml.train import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRETOKENIZERS = ("music", "bytelevel", "nanochat")


def bars_in(text: str) -> int:
    """Bars of every voice of every staff of every track (0 when the text does not parse)."""
    result = alphatex.parse(text)
    if result.ast is None:
        return 0
    return sum(len(v.bars) for t in result.ast.tracks for s in t.staves for v in s.voices)


def per_bar(lake: Lake) -> dict:
    """Tokens per bar and bytes per token on the valid split's original (unshifted) documents."""
    codec = load_codec(lake.path("tokenizer"))
    rows = workflow.split_texts(lake).filter((pl.col("split") == "valid") & (pl.col("shift") == 0))
    texts = rows["text"].to_list()
    docs = codec.encode_documents(rows["format"].to_list(), texts)
    tokens = sum(len(ids) - 2 for ids in docs)  # without <|bos|> and the format token
    bars = sum(bars_in(t) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    return {"valid_docs": len(texts), "valid_bars": bars, "valid_tokens": tokens,
            "tokens_per_bar": round(tokens / max(bars, 1), 3), "bytes_per_token": round(nbytes / max(tokens, 1), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "alphatex")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--split-seed", type=int, default=0, help="another seed puts other works in valid/test")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-tokenizers-"))
    report: dict = {"corpus": str(args.corpus), "steps": args.steps, "split_seed": args.split_seed,
                    "threads": torch.get_num_threads()}
    base = Lake.from_env(work / "base")
    report["data"] = build_data(base, args.corpus, args.split_seed)
    for name in PRETOKENIZERS:
        lake = Lake.from_env(work / name)
        shutil.copytree(base.path("curated"), lake.dir("curated"), dirs_exist_ok=True)
        tok = tokenize(lake, "bpe", vocab_size=args.vocab, pretokenizer=name)
        cfg = TrainConfig(family="gpt", model={"n_layer": 4, "n_embd": 128, "n_head": 2}, seq_len=512,
                          device_batch_size=8, total_batch_tokens=4096, max_steps=args.steps,
                          eval_every=0, checkpoint_every=0, seed=0)
        report[name] = {"tokenizer": tok, **per_bar(lake), "gpt_d4": run(lake, "gpt", cfg, tok)}
        print(json.dumps(report), file=sys.stderr, flush=True)
    best = min(PRETOKENIZERS, key=lambda n: report[n]["gpt_d4"]["val_bpb"])
    report["best_by_val_bpb"] = best
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
