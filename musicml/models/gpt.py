"""GPT, nanochat style: one depth dial, rotary embeddings, QK norm, ReLU² MLP, parameter-free
RMSNorm, untied embeddings, no biases, optional logit softcap, SDPA attention and a KV cache.

    cfg = GPTConfig.from_depth(4, vocab_size=512, seq_len=256)   # 4 layers, 128 wide, 2 heads
    model = GPT(cfg); model.init_weights()
    loss = model(x, y)                        # mean cross-entropy (targets == -1 ignored)
    logits = model(x)                         # (B, T, vocab)
    cache = model.new_cache(1, 300); model(prompt, cache=cache); model(next_tok, cache=cache)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    seq_len: int = 1024
    n_layer: int = 12
    n_embd: int = 768
    n_head: int = 6
    softcap: float = 15.0  # 0 disables the tanh logit cap
    rope_base: float = 10000.0
    mlp_ratio: int = 4

    @classmethod
    def from_depth(cls, depth: int, vocab_size: int, seq_len: int = 1024, *,
                   aspect_ratio: int = 32, head_dim: int = 64, **overrides) -> GPTConfig:
        """The single dial: ``n_embd = depth * aspect_ratio`` rounded up to a multiple of
        ``head_dim``, ``n_head = n_embd / head_dim``. d4 -> 4 x 128 (2 heads), d12 -> 12 x 384."""
        n_embd = max(head_dim, math.ceil(depth * aspect_ratio / head_dim) * head_dim)
        return cls(vocab_size=vocab_size, seq_len=seq_len, n_layer=depth, n_embd=n_embd,
                   n_head=n_embd // head_dim, **overrides)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown GPT config keys: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def norm(x: torch.Tensor) -> torch.Tensor:
    """RMSNorm without learnable parameters: ``x / sqrt(mean(x²) + eps)``, eps of the dtype
    (F.rms_norm's math), with a hand-written backward (half the time of autograd's on CPU)."""
    return _RMSNorm.apply(x)


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ms = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.size(-1))
        r = torch.rsqrt(ms.add_(torch.finfo(x.dtype).eps))
        y = x * r
        ctx.save_for_backward(y, r)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, r = ctx.saved_tensors  # dx = r * (dy - y * mean(dy * y))
        return torch.addcmul(dy, y, (dy * y).mean(-1, keepdim=True), value=-1).mul_(r)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    """``relu(x)²`` with the backward as one product, ``2 relu(x) dy``."""
    return _ReluSquared.apply(x)


class _ReluSquared(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r.square()

    @staticmethod
    def backward(ctx, dy):
        (r,) = ctx.saved_tensors
        return (dy * r).mul_(2)


def softcap_head(h: torch.Tensor, weight: torch.Tensor, cap: float) -> torch.Tensor:
    """Logits ``cap * tanh(h @ weight.T / cap)`` in float32, fused: the 1/cap scales the (small)
    weight instead of the (large) logits, and the backward is one ``1 - tanh²`` pass before the
    two matmuls. Under autocast the matmuls run in its dtype, as ``F.linear``'s would."""
    return _SoftcapHead.apply(h, weight, cap)


class _SoftcapHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, cap):
        u = F.linear(h, weight / cap)
        t = u.float().tanh_() if u.dtype != torch.float32 else u.tanh_()
        ctx.save_for_backward(h, weight, t)
        ctx.mm_dtype = u.dtype
        return t * cap

    @staticmethod
    def backward(ctx, dz):
        h, weight, t = ctx.saved_tensors
        g = torch.ops.aten.tanh_backward(dz, t).to(ctx.mm_dtype)  # d/du cap tanh(u) = 1 - tanh²
        dh = (g @ weight.to(ctx.mm_dtype)).to(h.dtype)
        dw = g.reshape(-1, g.size(-1)).mT @ h.reshape(-1, h.size(-1)).to(ctx.mm_dtype)
        return dh, dw.to(weight.dtype), None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension. x: (B, T, H, D); cos, sin
    from :func:`rotary_tables` (full width). With x = [x1, x2] this is
    [x1 cos + x2 sin, x2 cos - x1 sin], written as three ops: x * [cos, cos] + [x2, x1] *
    [sin, -sin]; the backward is the inverse rotation, three ops too."""
    return _Rotary.apply(x, cos.to(x.dtype), sin.to(x.dtype))


class _Rotary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin)

    @staticmethod
    def backward(ctx, dy):
        cos, sin = ctx.saved_tensors
        return torch.addcmul(dy * cos, dy.roll(dy.shape[-1] // 2, dims=-1), sin, value=-1), None, None


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-width tables (1, T, 1, D) for :func:`apply_rotary`: [cos, cos] and [sin, -sin]."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    cos, sin = freqs.cos(), freqs.sin()
    return (torch.cat([cos, cos], dim=-1)[None, :, None, :],
            torch.cat([sin, -sin], dim=-1)[None, :, None, :])


class KVCache:
    """Preallocated keys/values for every layer: (B, H, max_len, D) each; ``pos`` tokens filled."""

    def __init__(self, n_layer, batch_size, n_head, head_dim, max_len, device, dtype):
        shape = (n_layer, batch_size, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0

    def insert(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store k, v (B, H, T, D) at the current position; return all keys/values so far.
        The position advances after the last layer has inserted."""
        t0, t1 = self.pos, self.pos + k.size(2)
        if t1 > self.max_len:
            raise RuntimeError(f"KV cache full: {t1} > {self.max_len}")
        self.k[layer, :, :, t0:t1] = k.to(self.k.dtype)
        self.v[layer, :, :, t0:t1] = v.to(self.v.dtype)
        if layer == self.k.size(0) - 1:
            self.pos = t1
        return self.k[layer, :, :, :t1].to(k.dtype), self.v[layer, :, :, :t1].to(v.dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be a multiple of n_head"
        self.layer_idx, self.n_head, self.head_dim = layer_idx, cfg.n_head, cfg.head_dim
        self.c_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_k = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_v = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def rotate_and_norm(self, qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding and QK norm of q and k together: (B, T, 2H, D)."""
        return norm(apply_rotary(qk, cos, sin))

    def forward(self, x, cos, sin, cache: KVCache | None):
        B, T, C = x.shape
        H, D = self.n_head, self.head_dim
        # q, k, v in one matmul, and rotary + QK norm on q and k together (fewer, larger ops;
        # the same math as three projections)
        w = torch.cat([self.c_q.weight, self.c_k.weight, self.c_v.weight])
        # (split, not slicing: its backward is one cat instead of zero-filled copies)
        qk, v = F.linear(x, w).view(B, T, 3 * H, D).split([2 * H, H], dim=2)
        q, k = self.rotate_and_norm(qk, cos, sin).transpose(1, 2).split(H, dim=1)  # (B, H, T, D)
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.insert(self.layer_idx, k, v)
        Tq, Tk = q.size(2), k.size(2)
        if Tq == Tk:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif Tq == 1:  # one new token attends to everything cached
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk after a cached prefix: full view of the prefix, causal inside the chunk
            mask = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, cfg.mlp_ratio * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.mlp_ratio * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(relu_squared(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        self.attn = CausalSelfAttention(cfg, layer_idx)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache):
        x = x + self.attn(norm(x), cos, sin, cache)
        return x + self.mlp(norm(x))


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the vocabulary, ``-1`` targets ignored. ``reduction="none"`` gives
    per-token losses shaped like ``targets`` (0 where ignored)."""
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                           ignore_index=-1, reduction=reduction)
    return loss.view(targets.shape) if reduction == "none" else loss


class GPT(nn.Module):
    family = "gpt"

    def __init__(self, cfg: GPTConfig | dict):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = GPTConfig.from_dict(cfg)
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        # Rotary tables cover 4x the training length so cached generation can run past it.
        self.rotary_len = 4 * cfg.seq_len
        cos, sin = rotary_tables(self.rotary_len, cfg.head_dim, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights()

    # the context the model was trained for; generate() keeps its window within it
    @property
    def context_len(self) -> int:
        return self.config.seq_len

    @torch.no_grad()
    def init_weights(self) -> None:
        """nanochat init: embeddings N(0, 1); linears N(0, 1/sqrt(fan_in) * min(1, sqrt(fan_out/
        fan_in))); output projections of each block and the lm_head start at zero."""
        nn.init.normal_(self.wte.weight, std=1.0)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                fan_out, fan_in = module.weight.shape
                std = 1.0 / math.sqrt(fan_in) * min(1.0, math.sqrt(fan_out / fan_in))
                nn.init.normal_(module.weight, std=std)
        for block in self.blocks:
            nn.init.zeros_(block.attn.c_proj.weight)
            nn.init.zeros_(block.mlp.c_proj.weight)
        nn.init.zeros_(self.lm_head.weight)

    def new_cache(self, batch_size: int, max_len: int, device=None, dtype=None) -> KVCache:
        p = self.lm_head.weight
        cfg = self.config
        return KVCache(cfg.n_layer, batch_size, cfg.n_head, cfg.head_dim,
                       min(max_len, self.rotary_len), device or p.device, dtype or p.dtype)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_reduction: str = "mean", cache: KVCache | None = None) -> torch.Tensor:
        B, T = idx.shape
        t0 = cache.pos if cache is not None else 0
        if t0 + T > self.rotary_len:
            raise ValueError(f"sequence position {t0 + T} exceeds rotary table {self.rotary_len}")
        cos, sin = self.cos[:, t0:t0 + T], self.sin[:, t0:t0 + T]
        x = norm(self.wte(idx))
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        if self.config.softcap:
            logits = softcap_head(norm(x), self.lm_head.weight, self.config.softcap)
        else:
            logits = self.lm_head(norm(x)).float()
        if targets is None:
            return logits
        return lm_loss(logits, targets, loss_reduction)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), nanochat's estimate: 6 x non-embedding
        parameters + attention 12 x layers x heads x head_dim x seq_len."""
        cfg = self.config
        n = self.num_params() - self.wte.weight.numel()
        return 6 * n + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * cfg.seq_len
