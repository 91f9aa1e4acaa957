"""Training throughput of the project's GPT against a minimal reference GPT of the same shape.

    python bench/bench_train.py                      # CPU: d4, prints JSON
    python bench/bench_train.py --depths 4 12        # on CUDA: tokens/s and MFU per depth

Both loops run in this process on the same synthetic batch: forward, backward, optimizer step,
timed step by step in alternation (so that both see the same load on a shared machine); the
JSON gives medians for the whole step and for forward+backward alone.
"project" is musicml's GPT with its optimizers (Muon + AdamW); "reference" is a plain
nanoGPT-style model (learned positions, LayerNorm, GELU, AdamW) with the same layers, width,
heads, vocabulary and sequence length. On CUDA both use bf16 autocast and torch.compile.
Threads are the project's setting (``musicml.threads.limit_threads``; ``--threads`` overrides).

Quality at equal tokens (``--quality-steps``, default 60 on CPU, 0 on CUDA; ``--seeds``, default
3): every variant trains that many steps from each seed's init on the same real batches
(``--data``: a folder from ``bench_time_to_target.py --build-only``, default
``data_lake/gpu_check``, built from ``../shared/corpora/alphatex`` when missing) with the same
warmdown schedule, then val bpb is measured on the same valid tokens. Each variant takes one
part of the project away, so its speed and its val bpb against ``project`` say what that part
costs and what it buys: ``project_adamw`` (AdamW instead of Muon for the block matrices),
``project_no_qk_norm``, ``project_gelu`` (GELU instead of ReLU²), ``project_no_softcap``, and
``reference`` (the nanoGPT-style model, AdamW lr 1e-3). The JSON gives per variant the val bpb
of every seed, their mean and spread, the difference of the means to ``project`` with its
standard error, and the median step time over all seeds (all runs step in lockstep, so each
sees the same machine load). Step times are also taken as process CPU time (``ratio_cpu_time``,
``tokens_per_cpu_s``), which a loaded machine disturbs less than wall time.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from musicml.threads import limit_threads  # noqa: E402

limit_threads()  # before torch is imported: the training process's own setting

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from musicml.device import autocast, autocast_dtype, configure, peak_flops, pick_device  # noqa: E402
from musicml.evaluate.bpb import bits_per_byte  # noqa: E402
from musicml.models import build_model, model_config  # noqa: E402
from musicml.models.gpt import MLP, CausalSelfAttention, apply_rotary, lm_loss  # noqa: E402
from musicml.shards import iter_batches, shard_paths  # noqa: E402
from musicml.train.optim import build_optimizers, lr_multiplier, set_lr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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

    def forward(self, idx, targets, loss_reduction: str = "mean"):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for b in self.blocks:
            x = b(x)
        return lm_loss(self.head(self.ln(x)).float(), targets, loss_reduction)


def adamw_optimizers(model: nn.Module, lr: float = 1e-3) -> list[torch.optim.Optimizer]:
    """The project's AdamW groups (embedding, unembedding), and AdamW instead of Muon for the
    block matrices."""
    adamw, _muon = build_optimizers(model)
    matrices = [p for p in model.blocks.parameters() if p.ndim == 2]
    opt = torch.optim.AdamW(matrices, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    return [adamw, opt]


def reference_optimizers(model: nn.Module, device, lr: float = 1e-3) -> list[torch.optim.Optimizer]:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=device.type == "cuda")
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    return [opt]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Loop:
    """One model's training step, timed in two parts: forward+backward, optimizer step."""

    def __init__(self, model, optimizers, device, dtype, compile_):
        self.model, self.optimizers, self.device, self.dtype = model, optimizers, device, dtype
        self.fwd = torch.compile(model) if compile_ else model
        self.fb, self.opt, self.cpu, self.loss = [], [], [], float("nan")

    def step(self, x, y, record: bool) -> None:
        _sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        with autocast(self.device, self.dtype):
            loss = self.fwd(x, y)
        loss.backward()
        _sync(self.device)
        t1 = time.perf_counter()
        for opt in self.optimizers:
            opt.step()
        self.model.zero_grad(set_to_none=True)
        _sync(self.device)
        t2, c2 = time.perf_counter(), time.process_time()
        self.loss = loss.item()
        if record:
            self.fb.append(t1 - t0)
            self.opt.append(t2 - t1)
            self.cpu.append(c2 - c0)

    def summary(self, tokens: int) -> dict:
        fb, opt = statistics.median(self.fb), statistics.median(self.opt)
        cpu = statistics.median(self.cpu)
        return {"tokens_per_s": tokens / (fb + opt), "step_s": fb + opt, "fwd_bwd_s": fb,
                "step_cpu_s": cpu, "tokens_per_cpu_s": tokens / cpu,
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
        "reference": Loop(ref, reference_optimizers(ref, device), device, dtype, compile_),
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
        "ratio_cpu_time": p["tokens_per_cpu_s"] / r["tokens_per_cpu_s"],
    }
    peak = peak_flops(device)
    if peak:
        out["project_mfu"] = project.flops_per_token() * p["tokens_per_s"] / peak
        out["peak_flops"] = peak
    del project, ref, loops
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def load_data(path: Path, corpus: Path) -> Path | None:
    """The prebuilt data folder, built from the alphaTex corpus when missing; None without
    either."""
    if (path / "data.json").exists():
        return path
    if not corpus.exists():
        return None
    from bench_time_to_target import build

    build(corpus, path.parent / (path.name + ".work"), path)
    return path


class GeluMLP(MLP):
    """The project's MLP with GELU instead of ReLU² (ablation)."""

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class NoQKNormAttention(CausalSelfAttention):
    """The project's attention with rotary but without QK norm (ablation)."""

    def rotate_and_norm(self, qk, cos, sin):
        return apply_rotary(qk, cos, sin)


def project_model(cfg: dict, *, mlp: type | None = None, attn: type | None = None) -> nn.Module:
    """The project's GPT, with its MLP or attention class swapped for an ablation subclass (same
    parameters, same init)."""
    model = build_model("gpt", cfg)
    for block in model.blocks:
        if mlp is not None:
            block.mlp.__class__ = mlp
        if attn is not None:
            block.attn.__class__ = attn
    return model


def ablations(device) -> dict:
    """name: (cfg -> model, model -> optimizers). Each differs from ``project`` in one part."""
    ref = lambda c: RefGPT(c["vocab_size"], c["seq_len"], c["n_layer"], c["n_embd"], c["n_head"])  # noqa: E731
    return {
        "project": (project_model, build_optimizers),
        "project_adamw": (project_model, adamw_optimizers),
        "project_no_qk_norm": (lambda c: project_model(c, attn=NoQKNormAttention), build_optimizers),
        "project_gelu": (lambda c: project_model(c, mlp=GeluMLP), build_optimizers),
        "project_no_softcap": (lambda c: project_model({**c, "softcap": 0.0}), build_optimizers),
        "reference": (ref, lambda m: reference_optimizers(m, device)),
    }


def _spread(values: list[float]) -> dict:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "sd": round(sd, 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def quality(args, device, dtype) -> dict:
    """Every ablation variant, every seed: ``quality_steps`` steps on the same real batches with
    the same schedule, then val bpb on the same valid tokens; the median step time of each
    variant over all its seeds (all runs step in lockstep, so each sees the same load)."""
    info = json.loads((args.data / "data.json").read_text())
    tb = np.load(args.data / "token_bytes.npy", allow_pickle=False)
    shards = args.data / "shards"
    train_paths, val_paths = shard_paths(shards, "train"), shard_paths(shards, "valid")
    vocab, T, B, steps = len(tb), args.seq_len, args.batch, args.quality_steps
    cfg = model_config("gpt", vocab, T, depth=args.quality_depth)
    stream = iter_batches(train_paths, B, T, device=device)
    batches = [next(stream)[:2] for _ in range(steps)]  # the same batches for every run
    runs = []
    for name, (make_model, make_opts) in ablations(device).items():
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = make_model(cfg).to(device)
            runs.append({"name": name, "seed": seed, "model": model, "opts": make_opts(model),
                         "times": [], "cpu": []})
    for step, (x, y) in enumerate(batches):
        for run in runs:  # one step of each run in turn
            model, opts = run["model"], run["opts"]
            set_lr(opts, lr_multiplier(step, steps), step)
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            with autocast(device, dtype):
                loss = model(x, y)
            loss.backward()
            for opt in opts:
                opt.step()
            model.zero_grad(set_to_none=True)
            _sync(device)
            if step > 0:
                run["times"].append(time.perf_counter() - t0)
                run["cpu"].append(time.process_time() - c0)
    by_name: dict[str, dict] = {}
    for run in runs:
        bpb = bits_per_byte(run["model"], val_paths, torch.as_tensor(tb, device=device), seq_len=T,
                            batch_size=B, max_tokens=args.eval_tokens, device=device, dtype=dtype)
        v = by_name.setdefault(run["name"], {"val_bpb_per_seed": [], "times": [], "cpu": []})
        v["val_bpb_per_seed"].append(round(bpb, 4))
        v["times"] += run["times"]
        v["cpu"] += run["cpu"]
        run.clear()
    p = by_name["project"]["val_bpb_per_seed"]
    variants = {}
    for name, v in by_name.items():
        step_s = statistics.median(v["times"]) if v["times"] else float("nan")
        cpu_s = statistics.median(v["cpu"]) if v["cpu"] else float("nan")
        bpb = v["val_bpb_per_seed"]
        row = {"val_bpb": _spread(bpb), "val_bpb_per_seed": bpb,
               "step_s_median": round(step_s, 4), "tokens_per_s": round(B * T / step_s),
               "tokens_per_cpu_s": round(B * T / cpu_s)}
        if name != "project":  # the difference to the project and its standard error over seeds
            row["val_bpb_minus_project"] = round(statistics.fmean(bpb) - statistics.fmean(p), 4)
            if len(bpb) > 1:
                se = math.sqrt(statistics.variance(bpb) / len(bpb) + statistics.variance(p) / len(p))
                row["difference_se"] = round(se, 4)
        variants[name] = row
    project_tps = variants["project"]["tokens_per_s"]
    project_cpu = variants["project"]["tokens_per_cpu_s"]
    for row in variants.values():
        row["speed_over_project"] = round(row["tokens_per_s"] / project_tps, 3)
        row["cpu_speed_over_project"] = round(row["tokens_per_cpu_s"] / project_cpu, 3)
    return {"data": str(args.data), "corpus": info.get("corpus"), "vocab_size": vocab,
            "depth": args.quality_depth, "seq_len": T, "batch": B, "steps": steps,
            "tokens": steps * B * T, "seeds": args.seeds, "val_tokens": args.eval_tokens,
            "tokens_per_s_ratio_project_over_reference": round(
                project_tps / variants["reference"]["tokens_per_s"], 3),
            "tokens_per_cpu_s_ratio_project_over_reference": round(
                project_cpu / variants["reference"]["tokens_per_cpu_s"], 3),
            "variants": variants}


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
    p.add_argument("--data", type=Path, default=ROOT / "data_lake" / "gpu_check",
                   help="prebuilt shards for the quality runs (bench_time_to_target.py --build-only)")
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "alphatex")
    p.add_argument("--quality-steps", type=int, default=None,
                   help="steps per variant at equal tokens (default 60 CPU, 0 CUDA); 0 skips")
    p.add_argument("--quality-depth", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3, help="seeds per quality variant")
    p.add_argument("--eval-tokens", type=int, default=2**14, help="val target tokens for bpb")
    args = p.parse_args()
    if args.threads:
        limit_threads(args.threads, override_env=True)
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
    if args.quality_steps is None:
        args.quality_steps = 0 if cuda else 60
    quality_out: dict | None = None
    if args.quality_steps > 0:
        args.data = load_data(args.data, args.corpus)
        quality_out = (quality(args, device, dtype) if args.data is not None else
                       {"skipped": f"no data folder and no corpus at {args.corpus}"})
    print(json.dumps({
        "benchmark": "train_throughput", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor()
        or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "compile": compile_,
        "autocast": str(dtype), "results": results, "quality_at_equal_tokens": quality_out,
    }, indent=1, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
