"""Model families behind one registry, so a plain JSON dict rebuilds any model.

    cfg = model_config("gpt", vocab_size=512, seq_len=256, depth=4)   # -> plain dict
    model = build_model("gpt", cfg)

Every family has ``forward(idx, targets=None, loss_reduction="mean", cache=None)`` (logits
without targets, loss with them, ``-1`` targets ignored), ``new_cache(batch, max_len)`` for
generation and ``context_len`` (int, or None when unbounded).
"""

from __future__ import annotations

import torch.nn as nn

from musicml.models.bigram import Bigram, BigramConfig
from musicml.models.fractal import FractalConfig, FractalGen
from musicml.models.gpt import GPT, GPTConfig
from musicml.models.lstm import LSTM, LSTMConfig

MODEL_FAMILIES: dict[str, tuple[type[nn.Module], type]] = {
    "gpt": (GPT, GPTConfig),
    "bigram": (Bigram, BigramConfig),
    "lstm": (LSTM, LSTMConfig),
}
# Families over piano rolls, not tokens (their own interface: see musicml.models.fractal).
ROLL_FAMILIES: dict[str, tuple[type[nn.Module], type]] = {"fractal": (FractalGen, FractalConfig)}


def _family(family: str):
    try:
        return {**MODEL_FAMILIES, **ROLL_FAMILIES}[family]
    except KeyError:
        known = sorted(MODEL_FAMILIES) + sorted(ROLL_FAMILIES)
        raise ValueError(f"unknown model family {family!r}; known: {known}") from None


def model_config(family: str, vocab_size: int, seq_len: int, **overrides) -> dict:
    """The full config of ``family`` as a plain dict. For GPT, ``depth`` (with optional
    ``aspect_ratio`` / ``head_dim``) sets the size through ``GPTConfig.from_depth``; explicit
    ``n_layer`` / ``n_embd`` / ``n_head`` override it (default depth 4)."""
    _, config_cls = _family(family)
    if family == "gpt":
        depth = overrides.pop("depth", None)
        dial = {k: overrides.pop(k) for k in ("aspect_ratio", "head_dim") if k in overrides}
        explicit = {"n_layer", "n_embd", "n_head"} & set(overrides)
        if depth is None and explicit == {"n_layer", "n_embd", "n_head"}:
            return GPTConfig(vocab_size=vocab_size, seq_len=seq_len, **overrides).to_dict()
        base = GPTConfig.from_depth(depth or 4, vocab_size, seq_len, **dial).to_dict()
        base.update(overrides)
        if "n_embd" in overrides and "n_head" not in overrides:
            base["n_head"] = max(1, base["n_embd"] // dial.get("head_dim", 64))
        return GPTConfig.from_dict(base).to_dict()
    return config_cls.from_dict({"vocab_size": vocab_size, "seq_len": seq_len, **overrides}).to_dict()


def build_model(family: str, config: dict) -> nn.Module:
    """A freshly initialized model of ``family`` from its plain-dict config."""
    model_cls, config_cls = _family(family)
    return model_cls(config_cls.from_dict(dict(config)))


__all__ = ["FractalConfig", "FractalGen", "MODEL_FAMILIES", "ROLL_FAMILIES", "build_model", "model_config", "GPT",
           "GPTConfig", "Bigram", "BigramConfig", "LSTM", "LSTMConfig"]
