"""Char-level LSTM as in the MIT 6.S191 music lab (embedding 256, one LSTM layer of 1024 units,
a linear read-out; trained with Adam). Same forward signature as GPT; the recurrent state is
the generation "cache"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn

from musicml.models.gpt import lm_loss


@dataclass
class LSTMConfig:
    vocab_size: int
    seq_len: int = 100  # the lab's training length; the model itself is unbounded
    embed_dim: int = 256
    hidden_dim: int = 1024
    n_layers: int = 1
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> LSTMConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown LSTM config keys: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMState:
    """(h, c) of every layer, carried between calls; None until the first call."""

    def __init__(self):
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None
        self.pos = 0

    def reset(self) -> None:
        self.state, self.pos = None, 0


class LSTM(nn.Module):
    family = "lstm"
    context_len = None  # unbounded: the state summarizes the whole past

    def __init__(self, cfg: LSTMConfig | dict):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = LSTMConfig.from_dict(cfg)
        self.config = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, num_layers=cfg.n_layers,
                            batch_first=True, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.head = nn.Linear(cfg.hidden_dim, cfg.vocab_size)

    def new_cache(self, batch_size: int, max_len: int, device=None, dtype=None) -> LSTMState:
        return LSTMState()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_reduction: str = "mean", cache: LSTMState | None = None) -> torch.Tensor:
        x = self.embedding(idx)
        out, state = self.lstm(x, cache.state if cache is not None else None)
        if cache is not None:
            cache.state, cache.pos = state, cache.pos + idx.size(1)
        logits = self.head(out).float()
        if targets is None:
            return logits
        return lm_loss(logits, targets, loss_reduction)
