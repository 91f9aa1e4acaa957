"""Token shard settings (asset ``token_shards``), each with its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ShardsConfig:
    tokens_per_shard: int = 2_000_000  # a shard is closed once it holds this many tokens
    augment_eval_splits: bool = False  # valid/test hold originals only unless set
    seed: int = 0  # seed of the document order within shards
    cache_tokens: bool = True  # reuse token documents cached per (text hash, tokenizer digest); off: encode every document
