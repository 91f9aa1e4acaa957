"""Time to reach a target val bits-per-byte on the shared alphaTex corpus (GPT d4 by default).

    python bench/bench_time_to_target.py [--target 0.6] [--depth 4] [--steps 1000] [--eval-every 50]
    python bench/bench_time_to_target.py --build-only data_lake/gpu_check   # only the data
    python bench/bench_time_to_target.py --data data_lake/gpu_check         # train on it

Builds the alphaTex lake with the pipeline's own steps (as bench_baselines.py: ingest, dedup,
augmentation, splits; BPE 8192 with the music pre-tokenization), then trains the GPT with the
nanochat alphaTex schedule (seq 512, 4096-token batches, 1000 steps) and evaluates val bpb every
``--eval-every`` steps. ``--build-only DIR`` writes the shards, ``token_bytes.npy`` and
``data.json`` (BOS id, corpus counts) to DIR and stops; ``--data DIR`` trains on such a folder
without the corpus or the data libraries (only torch, numpy and pyarrow are imported), e.g. on
a GPU machine. Training time excludes evaluation time. Prints JSON: the step, training seconds
and tokens at which val bpb first reached ``--target`` (null when it did not), the whole val
curve, tokens/s and the device.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from musicml.device import pick_device  # noqa: E402
from musicml.train import TrainConfig, train  # noqa: E402


def build(corpus: Path, work: Path, out: Path) -> dict:
    """Build the lake from ``corpus`` under ``work``; copy what training needs to ``out``."""
    from bench_baselines import build_data, tokenize

    from musicml.lake import Lake

    if not corpus.exists():
        raise SystemExit(f"corpus not found: {corpus} (pass --corpus, or --data with prebuilt shards)")
    lake = Lake.from_env(work / "lake")
    info = {"corpus": str(corpus), "data": build_data(lake, corpus)}
    info["tokenizer"] = tokenize(lake, "bpe", vocab_size=8192, pretokenizer="music")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(lake.path("shards"), out / "shards",
                    ignore=shutil.ignore_patterns("catalog.duckdb"))
    shutil.copyfile(lake.path("tokenizer", "token_bytes.npy"), out / "token_bytes.npy")
    (out / "data.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "alphatex")
    ap.add_argument("--data", type=Path, default=None, help="prebuilt folder from --build-only")
    ap.add_argument("--build-only", type=Path, default=None, metavar="DIR")
    ap.add_argument("--target", type=float, default=0.6)
    ap.add_argument("--depth", type=int, default=4, help="the GPT dial: d4 is 4 x 128, d12 is 12 x 384")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-tokens", type=int, default=4096, help="tokens per optimizer step")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-tokens", type=int, default=2**16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", default="auto")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-target-"))
    if args.build_only:
        info = build(args.corpus, work, args.build_only)
        print(json.dumps({"built": str(args.build_only), **info}, indent=1))
        return
    data = args.data or work / "data"
    if args.data is None:
        build(args.corpus, work, data)
    info = json.loads((data / "data.json").read_text())
    device = pick_device(args.device)
    report: dict = {"corpus": info["corpus"], "target_val_bpb": args.target, "depth": args.depth,
                    "device": str(device), "data": info["data"], "tokenizer": info["tokenizer"],
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    rows = 8 if args.batch_tokens >= 8 * args.seq_len else max(1, args.batch_tokens // args.seq_len)
    cfg = TrainConfig(family="gpt", model={"depth": args.depth}, seq_len=args.seq_len, device_batch_size=rows,
                      total_batch_tokens=args.batch_tokens, max_steps=args.steps,
                      eval_every=args.eval_every, eval_tokens=args.eval_tokens, checkpoint_every=0,
                      device=args.device, compile=args.compile, seed=0)
    curve: list[dict] = []
    clock = {"last": time.perf_counter(), "train_s": 0.0, "tokens": 0}

    def log(step: int, metrics: dict) -> None:
        now = time.perf_counter()
        val = metrics.get("val_bpb_estimate", metrics.get("val_bpb"))
        if val is not None:  # the time since the last callback was spent evaluating
            curve.append({"step": step, "train_s": round(clock["train_s"], 2), "tokens": clock["tokens"],
                          "val_bpb": round(val, 4)})
        else:
            clock["train_s"] += now - clock["last"]
            clock["tokens"] = int(metrics.get("tokens_seen", clock["tokens"]))
        clock["last"] = now

    tb = np.load(data / "token_bytes.npy", allow_pickle=False)
    t0 = time.perf_counter()
    result = train(cfg, data / "shards", work / "models" / "gpt", bos_id=info["tokenizer"]["bos_id"],
                   token_bytes=tb, log=log)
    hit = next((c for c in curve if c["val_bpb"] <= args.target), None)
    report.update({
        "reached": hit, "final_val_bpb": result.val_bpb, "steps": result.steps,
        "train_tokens_per_s": round(clock["tokens"] / max(clock["train_s"], 1e-9), 1),
        "wall_s": round(time.perf_counter() - t0, 1), "curve": curve, "torch": torch.__version__,
    })
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
