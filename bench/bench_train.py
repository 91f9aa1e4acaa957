"""Training throughput of the project's GPT against a minimal reference GPT of the same shape.

    python bench/bench_train.py                      # CPU: d4, prints JSON
    python bench/bench_train.py --depths 4 12        # on CUDA: tokens/s and MFU per depth

Both loops run in this process on the same synthetic batch: forward, backward, optimizer step,
timed step by step in alternation (so that both see the same load on a shared machine); the
JSON gives medians for the whole step and for forward+backward alone.
"project" is musicml's GPT with its optimizers (Muon + AdamW); "reference" is a plain
nanoGPT-style model (learned positions, LayerNorm, GELU, AdamW) with the same layers, width,
heads, vocabulary and sequence length. On CUDA both use bf16 autocast and torch.compile.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicml.device import autocast, autocast_dtype, configure, peak_flops, pick_device  # noqa: E402
from musicml.models import build_model, model_config  # noqa: E402
from musicml.train.optim import build_optimizers  # noqa: E402


class RefBlock(nn.Module):
    def __init__(self, d: int, h: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.h = h

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class RefGPT(nn.Module):
    """Minimal nanoGPT-style reference of the same shape."""

    def __init__(self, vocab: int, seq_len: int, n_layer: int, d: int, h: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        self.blocks = nn.ModuleList(RefBlock(d, h) for _ in range(n_layer))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln(x)).float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Loop:
    """One model's training step, timed in two parts: forward+backward, optimizer step."""

    def __init__(self, model, optimizers, device, dtype, compile_):
        self.model, self.optimizers, self.device, self.dtype = model, optimizers, device, dtype
        self.fwd = torch.compile(model) if compile_ else model
        self.fb, self.opt, self.loss = [], [], float("nan")

    def step(self, x, y, record: bool) -> None:
        _sync(self.device)
        t0 = time.perf_counter()
        with autocast(self.device, self.dtype):
            loss = self.fwd(x, y)
        loss.backward()
        _sync(self.device)
        t1 = time.perf_counter()
        for opt in self.optimizers:
            opt.step()
        self.model.zero_grad(set_to_none=True)
        _sync(self.device)
        t2 = time.perf_counter()
        self.loss = loss.item()
        if record:
            self.fb.append(t1 - t0)
            self.opt.append(t2 - t1)

    def summary(self, tokens: int) -> dict:
        fb, opt = statistics.median(self.fb), statistics.median(self.opt)
        return {"tokens_per_s": tokens / (fb + opt), "step_s": fb + opt, "fwd_bwd_s": fb,
                "optimizer_s": opt, "fwd_bwd_tokens_per_s": tokens / fb, "final_loss": self.loss}


def bench_depth(depth, args, device, dtype, compile_):
    vocab, T, B = args.vocab, args.seq_len, args.batch
    cfg = model_config("gpt", vocab, T, depth=depth)
    torch.manual_seed(0)
    x = torch.randint(0, vocab, (B, T), device=device)
    y = torch.randint(0, vocab, (B, T), device=device)
    project = build_model("gpt", cfg).to(device)
    ref = RefGPT(vocab, T, cfg["n_layer"], cfg["n_embd"], cfg["n_head"]).to(device)
    loops = {
        "project": Loop(project, build_optimizers(project), device, dtype, compile_),
        "reference": Loop(ref, [torch.optim.AdamW(ref.parameters(), lr=3e-4,
                                                  fused=device.type == "cuda")],
                          device, dtype, compile_),
    }
    # interleaved, so that both loops see the same machine load (CPUs here are shared)
    for i in range(args.warmup + args.steps):
        for loop in loops.values():
            loop.step(x, y, record=i >= args.warmup)
    tokens = B * T
    p, r = loops["project"].summary(tokens), loops["reference"].summary(tokens)
    out = {
        "depth": depth, "n_layer": cfg["n_layer"], "n_embd": cfg["n_embd"],
        "n_head": cfg["n_head"], "vocab_size": vocab, "seq_len": T, "batch": B,
        "params": project.num_params(), "flops_per_token": project.flops_per_token(),
        "project": p, "reference": r,
        "ratio_project_over_reference": p["tokens_per_s"] / r["tokens_per_s"],
        "ratio_fwd_bwd_only": p["fwd_bwd_tokens_per_s"] / r["fwd_bwd_tokens_per_s"],
    }
    peak = peak_flops(device)
    if peak:
        out["project_mfu"] = project.flops_per_token() * p["tokens_per_s"] / peak
        out["peak_flops"] = peak
    del project, ref, loops
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--depths", type=int, nargs="+", default=None,
                   help="default: 4 on CPU, 4 and 12 on CUDA")
    p.add_argument("--seq-len", type=int, default=None, help="default 256 CPU, 1024 CUDA")
    p.add_argument("--batch", type=int, default=None, help="default 8 CPU, 32 CUDA")
    p.add_argument("--vocab", type=int, default=None, help="default 512 CPU, 8192 CUDA")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--compile", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    configure(device)
    cuda = device.type == "cuda"
    args.depths = args.depths or ([4, 12] if cuda else [4])
    args.seq_len = args.seq_len or (1024 if cuda else 256)
    args.batch = args.batch or (32 if cuda else 8)
    args.vocab = args.vocab or (8192 if cuda else 512)
    args.steps = args.steps or (30 if cuda else 8)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 2)
    compile_ = cuda if args.compile == "auto" else args.compile in ("1", "true", "on")
    dtype = autocast_dtype(device)
    results = [bench_depth(d, args, device, dtype, compile_) for d in args.depths]
    print(json.dumps({
        "benchmark": "train_throughput", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor()
        or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "compile": compile_,
        "autocast": str(dtype), "results": results,
    }, indent=1, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
