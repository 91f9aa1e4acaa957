"""The training loop: one function, ``train``, and a CLI that also runs under torchrun.

    cfg = TrainConfig(family="gpt", depth=4, seq_len=256, max_steps=2000)
    result = train(cfg, "data_lake/shards", "runs/r1", bos_id=0, token_bytes=tb)

    python -m musicml.train --config cfg.json --shards DIR --out DIR --bos 0 --token-bytes tb.npy
    torchrun --nproc_per_node=2 -m musicml.train ...        # DDP (gloo on CPU, nccl on CUDA)

What it does, in order: set up DDP when launched by torchrun, pick the device (bf16 autocast,
TF32 and torch.compile on CUDA), build the model from the registry, build the optimizers
(Muon + AdamW for GPT), resume from the newest ``out_dir/checkpoints/step_*.pt`` if any
(model, optimizers, step, data position, RNG states: the loss curve continues), then step:
every step takes ``total_batch_tokens`` tokens as ``grad_accum`` micro-batches per rank and
minimizes the mean loss over all target tokens of the global batch (so the loss does not depend
on how the batch is split over ranks and micro-batches). Rank 0 logs and checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from musicml import checkpoint as ckpt
from musicml.device import (
    autocast,
    autocast_dtype,
    configure,
    peak_flops,
    pick_device,
    synchronize,
    want_compile,
)
from musicml.evaluate.bpb import bits_per_byte
from musicml.models import build_model, model_config
from musicml.shards import DataPosition, iter_batches, shard_paths
from musicml.train.optim import build_optimizers, lr_multiplier, set_lr


@dataclass
class TrainConfig:
    family: str = "gpt"
    model: dict = field(default_factory=dict)  # overrides of the family's config
    depth: int = 4  # GPT size dial (ignored when model sets n_layer/n_embd/n_head)
    seq_len: int = 256
    device_batch_size: int = 16  # rows per micro-batch per rank
    total_batch_tokens: int | None = None  # global tokens per step; None: one micro-batch/rank
    max_steps: int = 1000
    time_budget_s: float | None = None  # wall-clock cap of this invocation (checkpoints, stops)
    lr_schedule: str = "steps"  # steps: warmdown over max_steps; time: over time_budget_s
    lr: float = 3e-3  # AdamW lr of non-GPT families
    matrix_lr: float = 0.02  # GPT: Muon lr of block matrices
    embedding_lr: float = 0.2  # GPT: AdamW lr of the token embedding
    unembedding_lr: float = 0.004  # GPT: AdamW lr of the lm_head
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    warmup_steps: int = 0
    warmdown_frac: float = 0.2
    final_lr_frac: float = 0.0
    eval_every: int = 250  # steps between val bpb evaluations; 0: only at the end
    eval_tokens: int = 2**17  # target positions per val evaluation
    checkpoint_every: int = 500  # 0: only at the end
    keep_last: int = 2
    seed: int = 42
    device: str = "auto"
    compile: str = "auto"
    dtype: str = "auto"
    window_docs: int = 1000  # packing window (documents), see musicml.shards.packing

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

    def model_config(self, vocab_size: int) -> dict:
        overrides = dict(self.model)
        if self.family == "gpt" and not {"n_layer", "n_embd", "n_head"} <= set(overrides):
            overrides.setdefault("depth", self.depth)
        return model_config(self.family, vocab_size, self.seq_len, **overrides)


@dataclass
class TrainResult:
    checkpoint: str
    steps: int
    tokens_seen: int
    elapsed_s: float
    train_loss: float | None
    val_bpb: float | None
    resumed_from_step: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _setup_distributed(device_pref: str) -> tuple[int, int, bool]:
    """(rank, world_size, initialized_here): joins the process group torchrun describes."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return 0, 1, False
    use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _all_reduce_sum(t: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        dist.all_reduce(t)
    return t


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the lines of ``log.jsonl`` up to ``step`` (atomic rewrite)."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)


def train(cfg: TrainConfig, shard_dir: str | Path, out_dir: str | Path, *, bos_id: int,
          token_bytes, log: Callable[[int, dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or resume training) a model on ``shard_dir/{train,valid}``; checkpoints under
    ``out_dir/checkpoints``. ``log(step, metrics)`` gets train_loss, lr_multiplier,
    tokens_per_s (and mfu on CUDA) every step, val_bpb every ``eval_every`` steps and at the
    end. ``should_stop()`` returning True checkpoints and ends the run cleanly (resumable)."""
    t_start = time.time()
    rank, world_size, own_group = _setup_distributed(cfg.device)
    master = rank == 0
    device = pick_device(cfg.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    configure(device)
    amp_dtype = autocast_dtype(device, cfg.dtype)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    token_bytes = np.asarray(token_bytes, dtype=np.int64)
    vocab_size = len(token_bytes)
    if not 0 <= bos_id < vocab_size:
        raise ValueError(f"bos_id {bos_id} outside the vocabulary of {vocab_size}")
    train_paths, val_paths = shard_paths(shard_dir, "train"), shard_paths(shard_dir, "valid")
    if not train_paths:
        raise FileNotFoundError(f"no train shards under {Path(shard_dir) / 'train'}")

    # batch geometry
    B, T = cfg.device_batch_size, cfg.seq_len
    micro_tokens = B * T * world_size
    total_tokens = cfg.total_batch_tokens or micro_tokens
    if total_tokens % micro_tokens:
        raise ValueError(f"total_batch_tokens {total_tokens} is not a multiple of "
                         f"device_batch_size * seq_len * world_size = {micro_tokens}")
    grad_accum = total_tokens // micro_tokens

    # model and optimizers
    _seed_everything(cfg.seed)
    mcfg = cfg.model_config(vocab_size)
    model = build_model(cfg.family, mcfg).to(device)
    optimizers = build_optimizers(model, lr=cfg.lr, matrix_lr=cfg.matrix_lr,
                                  embedding_lr=cfg.embedding_lr,
                                  unembedding_lr=cfg.unembedding_lr,
                                  weight_decay=cfg.weight_decay)

    # resume
    step, tokens_seen, position, resumed_from = 0, 0, DataPosition(), None
    last_val_bpb: float | None = None
    latest = ckpt.latest_checkpoint(ckpt_dir)
    if latest is not None:
        state = ckpt.load(latest, map_location=device)
        if state["family"] != cfg.family or state["model_config"] != mcfg:
            raise ValueError(f"checkpoint {latest} holds a different model "
                             f"({state['family']} {state['model_config']}) than the config asks "
                             f"({cfg.family} {mcfg}); use a fresh out_dir")
        model.load_state_dict(state["model"])
        for opt, opt_state in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        step, tokens_seen = int(state["step"]), int(state["tokens_seen"])
        position = DataPosition.from_dict(state["data_position"])
        last_val_bpb = state.get("val_bpb")
        ckpt.set_rng_state(state["rng"])
        resumed_from = step
        del state
        if master:  # the local log continues from the checkpoint: drop lines of the lost steps
            _truncate_log(out_dir / "log.jsonl", step)

    # wrappers: DDP averages gradients over ranks; compile on CUDA
    train_model: torch.nn.Module = model
    ddp_model: DDP | None = None
    if world_size > 1:
        ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        train_model = ddp_model
    if want_compile(device, cfg.compile):
        train_model = torch.compile(train_model)
    model.train()

    flops_per_token = model.flops_per_token() if hasattr(model, "flops_per_token") else None
    peak = peak_flops(device)
    tb_device = torch.as_tensor(token_bytes, device=device)
    eval_batch = B

    def emit(metrics: dict) -> None:
        if not master:
            return
        with open(out_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if log is not None:
            log(step, metrics)

    def evaluate() -> float | None:
        if not val_paths:
            return None
        return bits_per_byte(model, val_paths, tb_device, seq_len=T, batch_size=eval_batch,
                             max_tokens=cfg.eval_tokens, device=device, rank=rank,
                             world_size=world_size, dtype=amp_dtype,
                             window_docs=cfg.window_docs)

    def save_checkpoint(train_loss: float | None) -> Path:
        path = ckpt_dir / ckpt.checkpoint_name(step)
        if master:
            ckpt.save({
                "family": cfg.family, "model_config": mcfg, "model": model.state_dict(),
                "optimizers": [opt.state_dict() for opt in optimizers], "step": step,
                "tokens_seen": tokens_seen, "data_position": position.to_dict(),
                "rng": ckpt.rng_state(), "train_config": cfg.to_dict(),
                "bos_id": int(bos_id), "vocab_size": int(vocab_size), "world_size": world_size,
                "train_loss": train_loss, "val_bpb": last_val_bpb,
            }, path)
            ckpt.prune(ckpt_dir, cfg.keep_last)
        return path

    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(cfg.to_json() + "\n")
    batches = iter_batches(train_paths, B, T, rank=rank, world_size=world_size, start=position,
                           device=device, window_docs=cfg.window_docs)
    train_loss: float | None = None
    saved_step = resumed_from
    ckpt_path = latest
    run_start = time.time()
    while step < cfg.max_steps:
        if cfg.eval_every > 0 and step % cfg.eval_every == 0 and step != resumed_from:
            val = evaluate()
            if val is not None:
                last_val_bpb = val
                emit({"val_bpb": val})
        t0 = time.time()
        micro = [next(batches) for _ in range(grad_accum)]
        stop_here = bool(should_stop and should_stop()) or bool(
            cfg.time_budget_s is not None and time.time() - run_start > cfg.time_budget_s)
        # one collective: global count of target tokens, and whether any rank wants to stop
        counts = torch.tensor([float(sum(int((y >= 0).sum()) for _, y, _ in micro)),
                               float(stop_here)], dtype=torch.float64, device=device)
        counts = _all_reduce_sum(counts, world_size)
        if counts[1].item() > 0:
            break
        n_targets = counts[0].item()
        if cfg.lr_schedule == "time" and cfg.time_budget_s:
            # warmdown over the wall-clock budget: equal-time comparisons end their schedule too
            frac = min((time.time() - run_start) / cfg.time_budget_s, 1.0)
            lrm = lr_multiplier(round(frac * 10_000), 10_000, 0, cfg.warmdown_frac, cfg.final_lr_frac)
        else:
            lrm = lr_multiplier(step, cfg.max_steps, cfg.warmup_steps, cfg.warmdown_frac,
                                cfg.final_lr_frac)
        set_lr(optimizers, lrm, step)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for i, (x, y, _) in enumerate(micro):
            # all-reduce gradients only on the last micro-batch
            ctx = ddp_model.no_sync() if (ddp_model is not None and i < grad_accum - 1) \
                else contextlib.nullcontext()
            with ctx, autocast(device, amp_dtype):
                loss = train_model(x, y, loss_reduction="sum")
            # DDP averages gradients over ranks: scale by world_size so the result is the
            # gradient of (sum of losses over the global batch) / (global target count)
            (loss * (world_size / n_targets)).backward()
            loss_sum += loss.detach().double()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        position = micro[-1][2]
        train_loss = _all_reduce_sum(loss_sum, world_size).item() / n_targets
        synchronize(device)
        dt = time.time() - t0
        step += 1
        tokens_seen += total_tokens
        metrics = {"train_loss": train_loss, "lr_multiplier": lrm,
                   "tokens_per_s": total_tokens / dt, "tokens_seen": tokens_seen}
        if flops_per_token and peak:
            metrics["mfu"] = flops_per_token * total_tokens / dt / (peak * world_size)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} at step {step}")
        emit(metrics)
        if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
            ckpt_path, saved_step = save_checkpoint(train_loss), step

    val = evaluate()
    if val is not None:
        last_val_bpb = val
        emit({"val_bpb": val})
    if saved_step != step or ckpt_path is None:
        ckpt_path, saved_step = save_checkpoint(train_loss), step
    if world_size > 1:
        dist.barrier()
    result = TrainResult(checkpoint=str(ckpt_path), steps=step, tokens_seen=tokens_seen,
                         elapsed_s=time.time() - t_start, train_loss=train_loss,
                         val_bpb=last_val_bpb, resumed_from_step=resumed_from)
    if own_group:
        dist.destroy_process_group()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train a musicml model on token shards.")
    p.add_argument("--config", required=True, help="TrainConfig as JSON")
    p.add_argument("--shards", required=True, help="shard dir with train/ and valid/")
    p.add_argument("--out", required=True, help="run dir (checkpoints/, log.jsonl)")
    p.add_argument("--bos", type=int, required=True, help="BOS token id")
    p.add_argument("--token-bytes", required=True, help=".npy of per-token UTF-8 byte lengths")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_json(Path(args.config).read_text())
    token_bytes = np.load(args.token_bytes, allow_pickle=False)
    rank = int(os.environ.get("RANK", 0))

    def log(step: int, metrics: dict) -> None:
        print(json.dumps({"step": step, **metrics}), flush=True)

    result = train(cfg, args.shards, args.out, bos_id=args.bos, token_bytes=token_bytes,
                   log=log)
    if rank == 0:
        print(json.dumps({"result": result.to_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
