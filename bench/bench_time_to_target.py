"""Time to reach a target val bits-per-byte on the shared alphaTex corpus (GPT d4 by default).

    python bench/bench_time_to_target.py [--target 1.0] [--depth 4] [--steps 1000] [--eval-every 50]

Builds the alphaTex lake with the pipeline's own steps (as bench_baselines.py: ingest, dedup,
augmentation, splits; BPE 8192 with the music pre-tokenization), then trains the GPT with the
nanochat alphaTex schedule (seq 512, 4096-token batches) and evaluates val bpb every
``--eval-every`` steps. Training time excludes evaluation time. Prints JSON: the step, training
seconds and tokens at which val bpb first reached ``--target`` (null when it did not), the whole
val curve, tokens/s and the device. Meant for a GPU (device auto); runs on a CPU too, slowly.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_baselines import build_data, tokenize  # noqa: E402

from musicml.device import pick_device  # noqa: E402
from musicml.lake import Lake  # noqa: E402
from musicml.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "alphatex")
    ap.add_argument("--target", type=float, default=1.0)
    ap.add_argument("--depth", type=int, default=4, help="the GPT dial: d4 is 4 x 128, d12 is 12 x 384")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-target-"))
    lake = Lake.from_env(work / "lake")
    report: dict = {"corpus": str(args.corpus), "target_val_bpb": args.target, "depth": args.depth,
                    "device": str(pick_device(args.device))}
    report["data"] = build_data(lake, args.corpus)
    tok = tokenize(lake, "bpe", vocab_size=8192, pretokenizer="music")
    cfg = TrainConfig(family="gpt", depth=args.depth, seq_len=512, device_batch_size=8,
                      total_batch_tokens=4096, max_steps=args.steps, eval_every=args.eval_every,
                      eval_tokens=2**16, checkpoint_every=0, device=args.device, seed=0)
    curve: list[dict] = []
    clock = {"last": time.perf_counter(), "train_s": 0.0, "tokens": 0}

    def log(step: int, metrics: dict) -> None:
        now = time.perf_counter()
        if "val_bpb" in metrics:  # the time since the last callback was spent evaluating
            curve.append({"step": step, "train_s": round(clock["train_s"], 2), "tokens": clock["tokens"],
                          "val_bpb": round(metrics["val_bpb"], 4)})
        else:
            clock["train_s"] += now - clock["last"]
            clock["tokens"] = int(metrics.get("tokens_seen", clock["tokens"]))
        clock["last"] = now

    tb = np.load(lake.path("tokenizer", "token_bytes.npy"), allow_pickle=False)
    result = train(cfg, lake.path("shards"), lake.path("models", "gpt"), bos_id=tok["bos_id"],
                   token_bytes=tb, log=log)
    hit = next((c for c in curve if c["val_bpb"] <= args.target), None)
    report.update({
        "reached": hit, "final_val_bpb": result.val_bpb, "steps": result.steps,
        "train_tokens_per_s": round(clock["tokens"] / max(clock["train_s"], 1e-9), 1),
        "curve": curve, "torch": torch.__version__,
    })
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
