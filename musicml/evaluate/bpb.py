"""Evaluation: bits per byte (nanochat's definition) and a unigram baseline.

bits per byte = sum of target-token losses in nats / (ln 2 * sum of the targets' UTF-8 bytes),
over target tokens whose byte length is > 0 (special tokens such as BOS are excluded from both
sums). It does not depend on the tokenizer, so models with different vocabularies compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from musicml.device import autocast
from musicml.shards.packing import DEFAULT_WINDOW_DOCS, eval_batches


def _token_bytes_tensor(token_bytes, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(token_bytes), dtype=torch.int64, device=device)


@torch.no_grad()
def loss_and_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   token_bytes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of nats, sum of bytes) over the targets of one batch with bytes > 0."""
    losses = model(x, y, loss_reduction="none").double()
    nbytes = torch.where(y >= 0, token_bytes[y.clamp(min=0)], 0)
    counted = nbytes > 0
    return (losses * counted).sum(), nbytes.sum().double()


@torch.no_grad()
def bits_per_byte(model: torch.nn.Module, shard_paths: Sequence[str | Path], token_bytes, *,
                  seq_len: int, batch_size: int, max_tokens: int | None = None,
                  device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1,
                  dtype: torch.dtype | None = None,
                  window_docs: int = DEFAULT_WINDOW_DOCS) -> float:
    """Bits per byte of ``model`` over one pass of the shards (packed as in training, capped at
    ``max_tokens`` target positions). Under DDP every rank evaluates its share of the rows
    and the sums are all-reduced, so every rank returns the same figure."""
    device = torch.device(device)
    tb = _token_bytes_tensor(token_bytes, device)
    was_training = model.training
    model.eval()
    nats = torch.zeros((), dtype=torch.float64, device=device)
    nbytes = torch.zeros((), dtype=torch.float64, device=device)
    for x, y in eval_batches(shard_paths, batch_size, seq_len, rank=rank, world_size=world_size,
                             device=device, max_tokens=max_tokens, window_docs=window_docs):
        with autocast(device, dtype):
            n, b = loss_and_bytes(model, x, y, tb)
        nats += n
        nbytes += b
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        both = torch.stack([nats, nbytes])
        dist.all_reduce(both)
        nats, nbytes = both[0], both[1]
    model.train(was_training)
    if nbytes.item() == 0:
        return float("nan")
    return nats.item() / (math.log(2) * nbytes.item())


def token_counts(shard_paths: Sequence[str | Path], vocab_size: int) -> np.ndarray:
    """How often each token id occurs in the shards (all tokens, BOS included)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for path in shard_paths:
        col = pq.read_table(path, columns=["tokens"]).column("tokens").combine_chunks()
        values = col.values.to_numpy(zero_copy_only=False)
        counts += np.bincount(values, minlength=vocab_size)[:vocab_size]
    return counts


def unigram_bpb(train_shard_paths: Sequence[str | Path], eval_shard_paths: Sequence[str | Path],
                token_bytes) -> float:
    """Bits per byte of an add-one smoothed unigram model fit on the train shards, over every
    token of the eval shards with bytes > 0: the floor any real model must beat."""
    tb = np.asarray(token_bytes, dtype=np.int64)
    vocab = len(tb)
    train = token_counts(train_shard_paths, vocab)
    logp = np.log((train + 1) / (train.sum() + vocab))
    ev = token_counts(eval_shard_paths, vocab)
    counted = tb > 0
    nats = -(ev[counted] * logp[counted]).sum()
    nbytes = (ev[counted] * tb[counted]).sum()
    return float(nats / (math.log(2) * nbytes)) if nbytes else float("nan")
