"""Bigram baseline (the char-level mini-GPT course's first model): a V x V table of next-token
logits indexed by the current token. Same forward signature as GPT."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn

from musicml.models.gpt import lm_loss


@dataclass
class BigramConfig:
    vocab_size: int
    seq_len: int = 256  # only the training row length; the model itself has a context of 1

    @classmethod
    def from_dict(cls, d: dict) -> BigramConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown bigram config keys: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


class BigramCache:
    """A bigram needs no past; the cache only counts positions, for a uniform interface."""

    def __init__(self):
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0


class Bigram(nn.Module):
    family = "bigram"
    context_len = 1

    def __init__(self, cfg: BigramConfig | dict):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = BigramConfig.from_dict(cfg)
        self.config = cfg
        self.table = nn.Embedding(cfg.vocab_size, cfg.vocab_size)
        nn.init.zeros_(self.table.weight)  # uniform prediction at start: loss = ln V

    def new_cache(self, batch_size: int, max_len: int, device=None, dtype=None) -> BigramCache:
        return BigramCache()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_reduction: str = "mean", cache: BigramCache | None = None) -> torch.Tensor:
        logits = self.table(idx)  # (B, T, V)
        if cache is not None:
            cache.pos += idx.size(1)
        if targets is None:
            return logits
        return lm_loss(logits, targets, loss_reduction)
