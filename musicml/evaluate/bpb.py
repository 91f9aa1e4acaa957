"""Evaluation: bits per byte (nanochat's definition) and a unigram baseline.

bits per byte = sum of target-token losses in nats / (ln 2 * sum of the targets' UTF-8 bytes),
over target tokens whose byte length is > 0 (special tokens such as BOS are excluded from both
sums). It does not depend on the tokenizer, so models with different vocabularies compare.
The unigram baseline (:func:`unigram_nll`) is scored on exactly the model's target positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SplitNLL:
    """Sums over the counted target positions of one pass over a split (targets with bytes > 0)."""

    nats: float
    bytes: int
    targets: int

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def bpb(self) -> float:
        return self.bits / self.bytes if self.bytes else float("nan")


@torch.no_grad()
def split_nll(model: torch.nn.Module, shard_paths: Sequence[str | Path], token_bytes, *,
              seq_len: int, batch_size: int, max_tokens: int | None = None,
              device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1,
              dtype: torch.dtype | None = None,
              window_docs: int = DEFAULT_WINDOW_DOCS) -> SplitNLL:
    """Negative log-likelihood of ``model`` over one pass of the shards (packed as in training,
    capped at ``max_tokens`` target positions; None: the whole split, every target once).
    Under DDP every rank evaluates its share of the rows and the sums are all-reduced."""
    device = torch.device(device)
    tb = _token_bytes_tensor(token_bytes, device)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, bytes, targets
    for x, y in eval_batches(shard_paths, batch_size, seq_len, rank=rank, world_size=world_size,
                             device=device, max_tokens=max_tokens, window_docs=window_docs):
        with autocast(device, dtype):
            n, b = loss_and_bytes(model, x, y, tb)
        counted = (torch.where(y >= 0, tb[y.clamp(min=0)], 0) > 0).sum()
        sums += torch.stack([n, b, counted.double()])
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    model.train(was_training)
    nats, nbytes, targets = sums.tolist()
    return SplitNLL(nats, int(nbytes), int(targets))


@torch.no_grad()
def bits_per_byte(model: torch.nn.Module, shard_paths: Sequence[str | Path], token_bytes, *,
                  seq_len: int, batch_size: int, max_tokens: int | None = None,
                  device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1,
                  dtype: torch.dtype | None = None,
                  window_docs: int = DEFAULT_WINDOW_DOCS) -> float:
    """Bits per byte of ``model`` over one pass of the shards (:func:`split_nll`). Under DDP
    every rank returns the same figure."""
    return split_nll(model, shard_paths, token_bytes, seq_len=seq_len, batch_size=batch_size,
                     max_tokens=max_tokens, device=device, rank=rank, world_size=world_size,
                     dtype=dtype, window_docs=window_docs).bpb


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
    token of the eval shards with bytes > 0 (the whole split: :func:`unigram_nll` with
    ``max_tokens=None`` scores the same tokens)."""
    tb = np.asarray(token_bytes, dtype=np.int64)
    logp = unigram_logp(train_shard_paths, len(tb))
    ev = token_counts(eval_shard_paths, len(tb))
    counted = tb > 0
    nats = -(ev[counted] * logp[counted]).sum()
    nbytes = (ev[counted] * tb[counted]).sum()
    return float(nats / (math.log(2) * nbytes)) if nbytes else float("nan")


def unigram_logp(train_shard_paths: Sequence[str | Path], vocab_size: int) -> np.ndarray:
    """Log-probabilities (nats) of an add-one smoothed unigram model fit on the train shards."""
    train = token_counts(train_shard_paths, vocab_size)
    return np.log((train + 1) / (train.sum() + vocab_size))


def unigram_nll(train_shard_paths: Sequence[str | Path], eval_shard_paths: Sequence[str | Path],
                token_bytes, *, seq_len: int, max_tokens: int | None = None,
                window_docs: int = DEFAULT_WINDOW_DOCS) -> SplitNLL:
    """The unigram baseline's :class:`SplitNLL` over exactly the target positions that
    :func:`split_nll` scores with the same ``seq_len``, ``max_tokens`` and ``window_docs``
    (same packing, same cap), so model and baseline are scored on the same tokens."""
    tb = np.asarray(token_bytes, dtype=np.int64)
    logp = unigram_logp(train_shard_paths, len(tb))
    counts = np.zeros(len(tb), dtype=np.int64)
    for _, y in eval_batches(eval_shard_paths, 64, seq_len, max_tokens=max_tokens,
                             window_docs=window_docs):
        t = y.numpy().ravel()
        counts += np.bincount(t[t >= 0], minlength=len(tb))
    counted = tb > 0
    return SplitNLL(float(-(counts[counted] * logp[counted]).sum()),
                    int((counts[counted] * tb[counted]).sum()), int(counts[counted].sum()))
