"""The training loop: one function, ``train`` (the CLI around it is ``musicml.train.cli``).

    cfg = preset_config("cpu", max_steps=2000)       # musicml.train.config
    result = train(cfg, "data_lake/shards", "runs/r1", bos_id=0, token_bytes=tb)

What it does, in order: set up DDP when launched by torchrun, pick the device (bf16 autocast,
TF32 and torch.compile on CUDA), build the model from the registry, build the optimizers
(Muon + AdamW for GPT), resume from the newest ``out_dir/checkpoints/step_*.pt`` if any
(model, optimizers, step, data position, RNG states: the loss curve continues) or, on a fresh
run with ``warm_start`` set, takes the initial weights of the checkpoint named in
``out_dir/warm_start.json`` (written by :func:`musicml.workflow.train_step`) when they fit, then step:
every step takes ``total_batch_tokens`` tokens as ``grad_accum`` micro-batches per rank and
minimizes the mean loss over all target tokens of the global batch (so the loss does not depend
on how the batch is split over ranks and micro-batches). Rank 0 logs and checkpoints.
Each of those is a named phase, a method of ``_Run``: setup, build, resume (or warm_start), wrap, loop
(train_step, evaluate, checkpoint), finish.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from musicml import checkpoint as ckpt
from musicml import env
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
from musicml.lake import write_text
from musicml.models import build_model
from musicml.shards import DataPosition, iter_batches, shard_paths
from musicml.threads import available_cores, oversubscribed
from musicml.train.config import WARM_START_CHOICES, TrainConfig
from musicml.train.optim import build_optimizers, lr_multiplier, set_lr

WARM_START_FILE = "warm_start.json"  # in out_dir: {"source", "checkpoint"} or {"source", "reason"}


@dataclass
class TrainResult:
    checkpoint: str
    steps: int
    tokens_seen: int
    elapsed_s: float
    train_loss: float | None
    val_bpb: float | None
    resumed_from_step: int | None
    warm_started_from: str | None = None  # the checkpoint whose weights the run started from
    warm_start_note: str | None = None  # what warm_start did, or why the run started fresh

    def to_dict(self) -> dict:
        return asdict(self)


def _setup_distributed(device_pref: str) -> tuple[int, int, bool]:
    """(rank, world_size, initialized_here): joins the process group torchrun describes."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    world_size = env.distributed().world_size
    if world_size <= 1:
        return 0, 1, False
    use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(env.distributed().local_rank)
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
        write_text(path, "".join(kept))


def _weights_mismatch(state: dict, family: str, mcfg: dict, own: dict) -> str | None:
    """Why the weights of checkpoint ``state`` cannot start a ``family`` model of config
    ``mcfg`` whose state dict is ``own`` (None: they can)."""
    if state.get("family") != family:
        return f"the checkpoint is a {state.get('family')!r} model, this run a {family!r} one"
    theirs = state.get("model_config", {}).get("vocab_size")
    if theirs != mcfg.get("vocab_size"):
        return f"the checkpoint's vocabulary has {theirs} tokens, this run's {mcfg.get('vocab_size')}"
    weights = state.get("model", {})
    if set(weights) != set(own):
        return f"the checkpoint's parameters differ ({sorted(set(weights) ^ set(own))[:4]} ...)"
    diff = [k for k in own if tuple(weights[k].shape) != tuple(own[k].shape)]
    if diff:
        return (f"parameter shapes differ: {diff[0]} is {tuple(weights[diff[0]].shape)} in the checkpoint, "
                f"{tuple(own[diff[0]].shape)} here ({len(diff)} differ)")
    return None


class _Run:
    """One invocation of :func:`train`: its phases as methods (setup, build, resume, wrap, step,
    evaluate, checkpoint, finish), the run's state as attributes."""

    def __init__(self, cfg: TrainConfig, log: Callable[[int, dict], None] | None) -> None:
        self.cfg, self.log = cfg, log
        self.t_start = time.time()
        self.step = 0
        self.tokens_seen = 0
        self.position = DataPosition()
        self.resumed_from: int | None = None
        self.last_val_bpb: float | None = None
        self.train_loss: float | None = None
        self.latest: Path | None = None
        self.warm_started_from: str | None = None
        self.warm_start_note: str | None = None

    def setup(self, shard_dir: str | Path, out_dir: str | Path, bos_id: int, token_bytes) -> None:
        """DDP, device and its settings, threads, inputs checked, batch geometry."""
        cfg = self.cfg
        if cfg.warm_start not in WARM_START_CHOICES:
            raise ValueError(f"unknown warm_start {cfg.warm_start!r}; choose one of {WARM_START_CHOICES}")
        self.rank, self.world_size, self.own_group = _setup_distributed(cfg.device)
        self.master = self.rank == 0
        device = pick_device(cfg.device)
        if device.type == "cuda" and self.world_size > 1:
            device = torch.device("cuda", env.distributed().local_rank)
        self.device = device
        configure(device)
        if oversubscribed():  # more torch threads than cores: cap them
            torch.set_num_threads(available_cores())
        self.amp_dtype = autocast_dtype(device, cfg.dtype)
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.token_bytes = np.asarray(token_bytes, dtype=np.int64)
        self.vocab_size = len(self.token_bytes)
        if not 0 <= bos_id < self.vocab_size:
            raise ValueError(f"bos_id {bos_id} outside the vocabulary of {self.vocab_size}")
        self.bos_id = bos_id
        self.train_paths = shard_paths(shard_dir, "train")
        self.val_paths = shard_paths(shard_dir, "valid")
        if not self.train_paths:
            raise FileNotFoundError(f"no train shards under {Path(shard_dir) / 'train'}")
        self.B, self.T = cfg.device_batch_size, cfg.seq_len
        micro_tokens = self.B * self.T * self.world_size
        self.total_tokens = cfg.total_batch_tokens or micro_tokens
        if self.total_tokens % micro_tokens:
            raise ValueError(f"total_batch_tokens {self.total_tokens} is not a multiple of "
                             f"device_batch_size * seq_len * world_size = {micro_tokens}")
        self.grad_accum = self.total_tokens // micro_tokens

    def build(self) -> None:
        """Seeded model from the registry, and its optimizers (Muon + AdamW for GPT)."""
        cfg = self.cfg
        _seed_everything(cfg.seed)
        self.mcfg = cfg.model_config(self.vocab_size)
        self.model = build_model(cfg.family, self.mcfg).to(self.device)
        self.optimizers = build_optimizers(self.model, lr=cfg.lr, matrix_lr=cfg.matrix_lr,
                                           embedding_lr=cfg.embedding_lr,
                                           unembedding_lr=cfg.unembedding_lr,
                                           weight_decay=cfg.weight_decay)

    def resume(self) -> None:
        """Load the newest checkpoint in ``out_dir/checkpoints``, if any: model, optimizers,
        step, data position, RNG states; the local log drops the lines of the lost steps."""
        latest = ckpt.latest_checkpoint(self.ckpt_dir)
        self.latest = latest
        if latest is None:
            self.warm_start()
            return
        cfg = self.cfg
        state = ckpt.load(latest, map_location=self.device)
        if state["family"] != cfg.family or state["model_config"] != self.mcfg:
            raise ValueError(f"checkpoint {latest} holds a different model "
                             f"({state['family']} {state['model_config']}) than the config asks "
                             f"({cfg.family} {self.mcfg}); use a fresh out_dir")
        self.model.load_state_dict(state["model"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        self.step, self.tokens_seen = int(state["step"]), int(state["tokens_seen"])
        self.position = DataPosition.from_dict(state["data_position"])
        self.last_val_bpb = state.get("val_bpb")
        self.warm_started_from = state.get("warm_started_from")
        self.warm_start_note = state.get("warm_start_note")
        ckpt.set_rng_state(state["rng"])
        self.resumed_from = self.step
        del state
        if self.master:
            _truncate_log(self.out_dir / "log.jsonl", self.step)

    def warm_start(self) -> None:
        """A fresh run with ``warm_start`` set: the model's weights (only: optimizers and step
        start fresh) from the checkpoint ``out_dir/warm_start.json`` names, when it holds the
        same family, vocabulary and parameter shapes; otherwise the run stays fresh, and why is
        ``warm_start_note`` (logged)."""
        cfg = self.cfg
        if cfg.warm_start == "none":
            return
        spec_path = self.out_dir / WARM_START_FILE
        spec = json.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
        source = spec.get("source", cfg.warm_start)
        path = spec.get("checkpoint")
        if not path:
            note = spec.get("reason") or f"no {WARM_START_FILE} in {self.out_dir} names a checkpoint"
        elif not Path(path).is_file():
            note = f"checkpoint {path} is missing"
        else:
            state = ckpt.load(path, map_location=self.device)
            note = _weights_mismatch(state, cfg.family, self.mcfg, self.model.state_dict())
            if note is None:
                self.model.load_state_dict(state["model"])
                self.warm_started_from = str(path)
                note = f"weights of {source} checkpoint {path} (step {state.get('step')})"
            del state
        self.warm_start_note = note if self.warm_started_from else f"started fresh: {note}"
        if self.master:
            print(f"warm_start {cfg.warm_start}: {self.warm_start_note}", file=sys.stderr, flush=True)

    def wrap(self) -> None:
        """DDP (averages gradients over ranks) and torch.compile (CUDA) around the model."""
        model = self.model
        self.train_model: torch.nn.Module = model
        self.ddp_model: DDP | None = None
        if self.world_size > 1:
            self.ddp_model = DDP(model, device_ids=[self.device.index]
                                 if self.device.type == "cuda" else None)
            self.train_model = self.ddp_model
        if want_compile(self.device, self.cfg.compile):
            self.train_model = torch.compile(self.train_model)
        model.train()
        self.flops_per_token = (model.flops_per_token() if hasattr(model, "flops_per_token")
                                else None)
        self.peak = peak_flops(self.device)
        self.tb_device = torch.as_tensor(self.token_bytes, device=self.device)

    def emit(self, metrics: dict) -> None:
        if not self.master:
            return
        with open(self.out_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": self.step, **metrics}) + "\n")
        if self.log is not None:
            self.log(self.step, metrics)

    def evaluate(self) -> None:
        """val bpb on the valid split (all ranks), logged and kept for the checkpoint."""
        if not self.val_paths:
            return
        val = bits_per_byte(self.model, self.val_paths, self.tb_device, seq_len=self.T,
                            batch_size=self.B, max_tokens=self.cfg.eval_tokens,
                            device=self.device, rank=self.rank, world_size=self.world_size,
                            dtype=self.amp_dtype, window_docs=self.cfg.window_docs)
        if val is not None:
            self.last_val_bpb = val
            self.emit({"val_bpb_estimate": val})

    def checkpoint(self) -> Path:
        """Save everything resuming needs (rank 0), keeping the last ``keep_last``."""
        cfg = self.cfg
        path = self.ckpt_dir / ckpt.checkpoint_name(self.step)
        if self.master:
            ckpt.save({
                "family": cfg.family, "model_config": self.mcfg,
                "model": self.model.state_dict(),
                "optimizers": [opt.state_dict() for opt in self.optimizers], "step": self.step,
                "tokens_seen": self.tokens_seen, "data_position": self.position.to_dict(),
                "rng": ckpt.rng_state(), "train_config": cfg.to_dict(),
                "bos_id": int(self.bos_id), "vocab_size": int(self.vocab_size),
                "world_size": self.world_size, "train_loss": self.train_loss,
                "val_bpb": self.last_val_bpb, "warm_started_from": self.warm_started_from,
                "warm_start_note": self.warm_start_note,
            }, path)
            ckpt.prune(self.ckpt_dir, cfg.keep_last)
        return path

    def lr_multiplier(self, run_start: float) -> float:
        cfg = self.cfg
        if cfg.lr_schedule == "time" and cfg.time_budget_s:
            # warmdown over the wall-clock budget: equal-time comparisons end their schedule too
            frac = min((time.time() - run_start) / cfg.time_budget_s, 1.0)
            return lr_multiplier(round(frac * 10_000), 10_000, 0, cfg.warmdown_frac,
                                 cfg.final_lr_frac)
        return lr_multiplier(self.step, cfg.max_steps, cfg.warmup_steps, cfg.warmdown_frac,
                             cfg.final_lr_frac)

    def train_step(self, batches, run_start: float,
                   should_stop: Callable[[], bool] | None) -> bool:
        """One optimizer step over ``total_batch_tokens`` tokens; False (nothing done) when
        any rank wants to stop."""
        cfg, world_size, grad_accum = self.cfg, self.world_size, self.grad_accum
        t0 = time.time()
        micro = [next(batches) for _ in range(grad_accum)]
        stop_here = bool(should_stop and should_stop()) or bool(
            cfg.time_budget_s is not None and time.time() - run_start > cfg.time_budget_s)
        # one collective: global count of target tokens, and whether any rank wants to stop
        counts = torch.tensor([float(sum(int((y >= 0).sum()) for _, y, _ in micro)),
                               float(stop_here)], dtype=torch.float64, device=self.device)
        counts = _all_reduce_sum(counts, world_size)
        if counts[1].item() > 0:
            return False
        n_targets = counts[0].item()
        lrm = self.lr_multiplier(run_start)
        set_lr(self.optimizers, lrm, self.step)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, (x, y, _) in enumerate(micro):
            # all-reduce gradients only on the last micro-batch
            ctx = self.ddp_model.no_sync() if (self.ddp_model is not None
                                               and i < grad_accum - 1) \
                else contextlib.nullcontext()
            with ctx, autocast(self.device, self.amp_dtype):
                loss = self.train_model(x, y, loss_reduction="sum")
            # DDP averages gradients over ranks: scale by world_size so the result is the
            # gradient of (sum of losses over the global batch) / (global target count)
            (loss * (world_size / n_targets)).backward()
            loss_sum += loss.detach().double()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        for opt in self.optimizers:
            opt.step()
        self.model.zero_grad(set_to_none=True)
        self.position = micro[-1][2]
        self.train_loss = train_loss = _all_reduce_sum(loss_sum, world_size).item() / n_targets
        synchronize(self.device)
        dt = time.time() - t0
        self.step += 1
        self.tokens_seen += self.total_tokens
        metrics = {"train_loss": train_loss, "lr_multiplier": lrm,
                   "tokens_per_s": self.total_tokens / dt, "tokens_seen": self.tokens_seen}
        if self.flops_per_token and self.peak:
            metrics["mfu"] = (self.flops_per_token * self.total_tokens / dt
                              / (self.peak * world_size))
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} at step {self.step}")
        self.emit(metrics)
        return True

    def loop(self, should_stop: Callable[[], bool] | None) -> tuple[Path | None, int | None]:
        """Steps until ``max_steps`` or a stop, evaluating and checkpointing on schedule;
        returns the last checkpoint and its step."""
        cfg = self.cfg
        if self.master:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.out_dir / "train_config.json", cfg.to_json() + "\n")
        batches = iter_batches(self.train_paths, self.B, self.T, rank=self.rank,
                               world_size=self.world_size, start=self.position,
                               device=self.device, window_docs=cfg.window_docs)
        ckpt_path, saved_step = self.latest, self.resumed_from
        run_start = time.time()
        while self.step < cfg.max_steps:
            if cfg.eval_every > 0 and self.step % cfg.eval_every == 0 \
                    and self.step != self.resumed_from:
                self.evaluate()
            if not self.train_step(batches, run_start, should_stop):
                break
            if cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0:
                ckpt_path, saved_step = self.checkpoint(), self.step
        return ckpt_path, saved_step

    def finish(self, ckpt_path: Path | None, saved_step: int | None) -> TrainResult:
        """Final evaluation, a checkpoint of the last step, the result."""
        self.evaluate()
        if saved_step != self.step or ckpt_path is None:
            ckpt_path = self.checkpoint()
        if self.world_size > 1:
            dist.barrier()
        result = TrainResult(checkpoint=str(ckpt_path), steps=self.step,
                             tokens_seen=self.tokens_seen, elapsed_s=time.time() - self.t_start,
                             train_loss=self.train_loss, val_bpb=self.last_val_bpb,
                             resumed_from_step=self.resumed_from,
                             warm_started_from=self.warm_started_from, warm_start_note=self.warm_start_note)
        if self.own_group:
            dist.destroy_process_group()
        return result


def train(cfg: TrainConfig, shard_dir: str | Path, out_dir: str | Path, *, bos_id: int,
          token_bytes, log: Callable[[int, dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or resume training) a model on ``shard_dir/{train,valid}``; checkpoints under
    ``out_dir/checkpoints``. ``log(step, metrics)`` gets train_loss, lr_multiplier,
    tokens_per_s (and mfu on CUDA) every step, val_bpb_estimate (bits per byte of the first
    ``eval_tokens`` of the valid split) every ``eval_every`` steps and at the end. ``should_stop()`` returning True checkpoints and ends the run cleanly (resumable)."""
    run = _Run(cfg, log)
    run.setup(shard_dir, out_dir, bos_id, token_bytes)
    run.build()
    run.resume()
    run.wrap()
    return run.finish(*run.loop(should_stop))
