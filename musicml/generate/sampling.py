"""Sampling from any model family, with or without a cache (KV cache / LSTM state).

Context policy (identical with and without the cache, so both give the same tokens): the model
sees the tokens from a window start ``s``; while the sequence fits ``model.context_len`` the
window is the whole sequence; when it would overflow, the window jumps to the last
``context_len // 2`` tokens (the cache is then rebuilt from them). LSTMs have no limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> int:
    """One token id from 1-D ``logits``: greedy at temperature 0, else softmax(logits / T)
    restricted to the ``top_k`` most likely and to the smallest set whose mass reaches
    ``top_p`` (nucleus)."""
    logits = logits.float()
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs
        drop = mass_before >= top_p  # keep tokens until the mass reaches top_p (first always)
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


@torch.no_grad()
def generate(model: torch.nn.Module, prompt_ids: Sequence[int], *, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, stop_ids: Iterable[int] = (), use_cache: bool = True,
             ) -> list[int]:
    """Sample up to ``max_new_tokens`` tokens after ``prompt_ids`` (non-empty; usually starts
    with BOS). Returns the new tokens only; generation stops early after a token in
    ``stop_ids``, which is included as the last element."""
    if len(prompt_ids) == 0:
        raise ValueError("prompt_ids must hold at least one token (e.g. BOS)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    stop = set(stop_ids)
    ctx = getattr(model, "context_len", None)
    ids = list(prompt_ids)
    start = 0 if ctx is None or len(ids) <= ctx else len(ids) - ctx
    cache, fed = None, 0  # fed: tokens of ids[start:] already in the cache
    new: list[int] = []
    for _ in range(max_new_tokens):
        if ctx is not None and len(ids) - start > ctx:
            start = len(ids) - max(1, ctx // 2)
            cache = None
        if use_cache:
            if cache is None:
                cache = model.new_cache(1, ctx if ctx is not None else 0, device=device)
                fed = 0
            chunk = ids[start + fed:]
            logits = model(torch.tensor([chunk], device=device), cache=cache)
            fed += len(chunk)
        else:
            logits = model(torch.tensor([ids[start:]], device=device))
        token = sample_next(logits[0, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                            generator=generator)
        ids.append(token)
        new.append(token)
        if token in stop:
            break
    model.train(was_training)
    return new
