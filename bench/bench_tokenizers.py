"""BPE pre-tokenizations compared fairly, on each format: equal training bytes, and equal compute.

    python bench/bench_tokenizers.py [--formats atex abc midi] [--train-bytes 500000] [--vocab 2048]

For each format one lake is built with the pipeline's own steps (ingest, dedup, splits by work;
no augmentation unless ``--max-shift``): alphaTex from every ``.atex`` of
``../shared/corpora/alphatex``, ABC from the first ``--abc-files`` files of music21's bundled
corpus, MIDI (as the project's MIDI text) from the first ``--midi-files`` POP909 songs. For each
pre-tokenization (``music``, ``bytelevel``, ``nanochat``) a BPE tokenizer is trained on the train
split and the same small GPT (d2: 2 layers, 128 wide, seq 256, 2,048-token batches, Muon + AdamW)
is trained twice:

* ``equal_bytes``: for as many steps as it takes to see ``--train-bytes`` bytes of training text
  (a pre-tokenization with more bytes per token takes fewer steps but sees the same text);
* ``equal_compute``: for the step count ``bytelevel`` needs for those bytes (the same tokens for
  everyone; ``bytelevel``'s two rows are one run).

Figures per run: val and test bits per byte (whole splits), the unigram baseline, steps, tokens
and bytes seen, wall seconds; per tokenizer the vocabulary and bytes per token (train and valid).
``best`` per format is the lowest val bpb at equal bytes. Prints JSON (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_baselines import run, tokenize  # noqa: E402

from musicml import workflow  # noqa: E402
from musicml.curate.augment import AugmentConfig  # noqa: E402
from musicml.curate.splits import SplitConfig  # noqa: E402
from musicml.ingest.corpus import music21_abc_files  # noqa: E402
from musicml.lake import Lake  # noqa: E402
from musicml.tokenizers import load_codec  # noqa: E402
from musicml.train import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
PRETOKENIZERS = ("music", "bytelevel", "nanochat")
REFERENCE = "bytelevel"  # equal compute = the steps this one needs for the byte budget
BATCH_TOKENS = 2048


def corpus_files(fmt: str, args: argparse.Namespace) -> list[Path]:
    """The real files the lake of ``fmt`` is built from."""
    if fmt == "atex":
        return sorted((CORPORA / "alphatex").rglob("*.atex"))
    if fmt == "abc":
        return music21_abc_files()[: args.abc_files]
    if fmt == "midi":
        return sorted((CORPORA / "midi" / "pop909").glob("*.mid"))[: args.midi_files]
    raise ValueError(f"unknown format {fmt!r}")


def build_lake(lake: Lake, files: list[Path], args: argparse.Namespace) -> dict:
    lake.raw_dir.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        shutil.copyfile(f, lake.raw_dir / f"{i:04d}_{f.name}")
    t0 = time.perf_counter()
    result, _ = workflow.ingest_step(lake, seed_default_corpus=False)
    workflow.parse_step(lake)
    dedup = workflow.dedup_step(lake)
    aug = workflow.augment_step(lake, AugmentConfig(min_shift=-args.max_shift, max_shift=args.max_shift))
    summary = workflow.split_step(lake, SplitConfig(seed=args.split_seed))
    return {"files": result.counts(), "works": dedup.counts["works"], "augment": aug.counts,
            "splits": summary.to_dicts(), "data_seconds": round(time.perf_counter() - t0, 1)}


def valid_bytes_per_token(lake: Lake) -> float:
    """UTF-8 bytes per token of the valid split's original documents (special tokens excluded)."""
    codec = load_codec(lake.path("tokenizer"))
    rows = workflow.split_texts(lake).filter((pl.col("split") == "valid") & (pl.col("shift") == 0))
    docs = codec.encode_documents(rows["format"].to_list(), rows["text"].to_list())
    tokens = sum(len(ids) - 2 for ids in docs)
    return round(sum(rows["text_bytes"].to_list()) / max(tokens, 1), 3)


def gpt(steps: int) -> TrainConfig:
    return TrainConfig(family="gpt", model={"n_layer": 2, "n_embd": 128, "n_head": 2}, seq_len=256,
                       device_batch_size=8, total_batch_tokens=BATCH_TOKENS, max_steps=steps,
                       eval_every=0, checkpoint_every=0, seed=0)


def train_run(lake: Lake, tok: dict, steps: int, name: str) -> dict:
    figures = run(lake, name, gpt(steps), tok)
    figures["train_bytes_seen"] = round(figures["tokens_seen"] * tok["bytes_per_token_train"])
    return figures


def bench_format(fmt: str, work: Path, args: argparse.Namespace) -> dict:
    base = Lake.from_env(work / fmt / "base")
    out: dict = {"data": build_lake(base, corpus_files(fmt, args), args)}
    toks: dict[str, tuple[Lake, dict]] = {}
    for name in PRETOKENIZERS:
        lake = Lake.from_env(work / fmt / name)
        shutil.copytree(base.path("curated"), lake.dir("curated"), dirs_exist_ok=True)
        tok = tokenize(lake, "bpe", vocab_size=args.vocab, pretokenizer=name)
        tok["bytes_per_token_valid"] = valid_bytes_per_token(lake)
        toks[name] = (lake, tok)
    ref_steps = max(1, round(args.train_bytes / (toks[REFERENCE][1]["bytes_per_token_train"] * BATCH_TOKENS)))
    for name, (lake, tok) in toks.items():
        steps = max(1, round(args.train_bytes / (tok["bytes_per_token_train"] * BATCH_TOKENS)))
        row = {"tokenizer": tok, "equal_bytes": train_run(lake, tok, steps, "equal_bytes")}
        row["equal_compute"] = (row["equal_bytes"] if name == REFERENCE
                                else train_run(lake, tok, ref_steps, "equal_compute"))
        out[name] = row
        print(json.dumps({fmt: {name: row}}), file=sys.stderr, flush=True)
    out["best_equal_bytes"] = min(PRETOKENIZERS, key=lambda n: out[n]["equal_bytes"]["val_bpb"])
    out["best_equal_compute"] = min(PRETOKENIZERS, key=lambda n: out[n]["equal_compute"]["val_bpb"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", nargs="+", default=["atex", "abc", "midi"], choices=["atex", "abc", "midi"])
    ap.add_argument("--train-bytes", type=int, default=500_000, help="training bytes per equal-bytes run")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--abc-files", type=int, default=120)
    ap.add_argument("--midi-files", type=int, default=40)
    ap.add_argument("--max-shift", type=int, default=0, help="augmentation -k..+k semitones (0: none)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steady on a shared, loaded CPU; 0: torch's default)")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not (CORPORA.exists() or args.formats == ["abc"]):
        sys.exit(f"real corpora not found at {CORPORA}; run with --formats abc (music21's corpus)")
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-tokenizers-"))
    t0 = time.perf_counter()
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "threads": torch.get_num_threads(),
                    "model": "gpt d2 (2 layers, 128 wide, 2 heads), seq 256, 2048-token batches"}
    for fmt in args.formats:
        report[fmt] = bench_format(fmt, work, args)
    report["best_equal_bytes"] = {f: report[f]["best_equal_bytes"] for f in args.formats}
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
