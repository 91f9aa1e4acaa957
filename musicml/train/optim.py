"""Optimizers and the learning-rate schedule.

GPT (nanochat recipe): Muon (momentum orthogonalized by a Newton-Schulz iteration) for the
2-D matrices of the transformer blocks, AdamW for the embedding, the unembedding and anything
1-D, with learning rates scaled by (n_embd / 768) ** -0.5. Other families: one AdamW (Adam when
weight_decay is 0). Under DDP the wrapper has already averaged the gradients, so every rank
runs the same (replicated) update.

Each param group carries ``initial_lr``; the training loop sets ``lr = initial_lr *
lr_multiplier(...)`` every step.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def zeropower_via_newtonschulz5(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximately orthogonalize G (the U V^T of its SVD) with a quintic Newton-Schulz
    iteration, coefficients from Keller Jordan's Muon. bf16 on accelerators, fp32 on CPU.
    G may be a batch (..., rows, cols); each iteration is two fused multiply-adds."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.bfloat16() if G.is_cuda else G.float()
    transposed = G.size(-2) > G.size(-1)
    if transposed:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    batched = X.dim() == 3
    if not batched:
        X = X.unsqueeze(0)
    for _ in range(steps):
        A = X @ X.mT
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b * A + c * A @ A
        X = torch.baddbmm(X, B, X, beta=a)  # a * X + B @ X
    if not batched:
        X = X.squeeze(0)
    if transposed:
        X = X.mT
    return X.to(G.dtype)


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, for 2-D weight matrices only.

    Nesterov momentum, then the update is orthogonalized and scaled by
    sqrt(max(1, rows / cols)) so every matrix takes steps of a similar RMS size."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      ns_steps=ns_steps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("Muon only takes 2-D parameters")

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                bufs.append(state["momentum_buffer"])
            momentum = group["momentum"]
            torch._foreach_lerp_(bufs, grads, 1 - momentum)
            updates = torch._foreach_lerp(grads, bufs, momentum) if group["nesterov"] else bufs
            # matrices of one shape (a tall one counted by its transpose) are orthogonalized
            # together, as one batched Newton-Schulz: a few large matmuls instead of many
            # small ones; the same result per matrix
            buckets: dict[tuple, list[int]] = {}
            for i, p in enumerate(params):
                rows, cols = p.shape
                buckets.setdefault((min(rows, cols), max(rows, cols), p.dtype, p.device),
                                   []).append(i)
            for idx in buckets.values():
                stacked = torch.stack([updates[i] if updates[i].size(0) <= updates[i].size(1)
                                       else updates[i].mT for i in idx])
                ortho = zeropower_via_newtonschulz5(stacked, steps=group["ns_steps"])
                for i, u in zip(idx, ortho):
                    p = params[i]
                    scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                    p.add_(u if p.size(0) <= p.size(1) else u.mT, alpha=-group["lr"] * scale)
        return loss


def build_optimizers(model: nn.Module, *, lr: float = 3e-3, matrix_lr: float = 0.02,
                     embedding_lr: float = 0.2, unembedding_lr: float = 0.004,
                     weight_decay: float = 0.0, betas: tuple[float, float] = (0.8, 0.95),
                     ) -> list[torch.optim.Optimizer]:
    """Optimizers for ``model``. GPT: [AdamW(embedding, unembedding, 1-D), Muon(block
    matrices)] with nanochat's learning rates; other families: [AdamW(all, lr)]."""
    if getattr(model, "family", None) != "gpt":
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.999))
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
        return [opt]
    scale = (model.config.n_embd / 768) ** -0.5
    matrices = [p for p in model.blocks.parameters() if p.ndim == 2]
    seen = {id(p) for p in matrices} | {id(model.wte.weight), id(model.lm_head.weight)}
    others = [p for p in model.parameters() if id(p) not in seen]
    adam_groups = [
        dict(params=[model.lm_head.weight], lr=unembedding_lr * scale),
        dict(params=[model.wte.weight], lr=embedding_lr * scale),
    ]
    if others:
        adam_groups.append(dict(params=others, lr=unembedding_lr * scale))
    adamw = torch.optim.AdamW(adam_groups, betas=betas, eps=1e-10, weight_decay=weight_decay)
    muon = Muon(matrices, lr=matrix_lr, momentum=0.95)
    for opt in (adamw, muon):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return [adamw, muon]


def lr_multiplier(step: int, total: int, warmup: int = 0, warmdown_frac: float = 0.2,
                  final_frac: float = 0.0) -> float:
    """Linear warmup over ``warmup`` steps, constant, then a linear warmdown over the last
    ``warmdown_frac`` of ``total`` steps down to ``final_frac``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    warmdown = round(warmdown_frac * total)
    if warmdown <= 0 or step <= total - warmdown:
        return 1.0
    progress = max(0.0, (total - step) / warmdown)
    return progress + (1 - progress) * final_frac


def muon_momentum(step: int, ramp: int = 300) -> float:
    """Muon momentum warms up from 0.85 to 0.95 over the first ``ramp`` steps (nanochat)."""
    frac = min(step / ramp, 1.0)
    return (1 - frac) * 0.85 + frac * 0.95


def set_lr(optimizers: list[torch.optim.Optimizer], multiplier: float, step: int) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * multiplier
        if isinstance(opt, Muon):
            for group in opt.param_groups:
                group["momentum"] = muon_momentum(step)
