"""Tokenizer settings (asset ``tokenizer``), each with its default; re-exported as
``musicml.tokenizers.TokenizerConfig``. It imports nothing of musicml, so every tokenizer module can use its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenizerConfig:
    """The tokenizer stage's settings (the ``tokenizer`` asset's config)."""

    kind: str = "bpe"  # bpe | char (the baselines') | remi | tsd | midilike | structured (miditok MIDI events)
    vocab_size: int = 8192  # bpe: the nanochat alphaTex run's, shrunk for tiny corpora; events: miditok_bpe's target
    pretokenizer: str = "auto"  # bpe only: auto (per format, measured: bpe.PRETOKENIZER_BY_FORMAT) | music | nanochat | bytelevel
    min_frequency: int = 2  # bpe only: a merge needs this many occurrences
    miditok_bpe: bool = False  # event kinds only: learn miditok's BPE (merges within bars) up to vocab_size
    retrain: str = "auto"  # auto: keep the saved tokenizer when trained with these settings and it still covers the train split (musicml.tokenizers.retrain) | always | never: keep any saved one
    keep_tolerance: float = 0.05  # auto: kept while every format's bytes per token on the train split is at least (1 - this) x its figure on the tokenizer's own training data


# the settings that decide what a training gives (all but the ones that decide whether to train)
RETRAIN_FIELDS = ("retrain", "keep_tolerance")
RETRAIN_MODES = ("auto", "always", "never")
