"""Keep the saved tokenizer or train a new one (``TokenizerConfig.retrain``), decided on figures.

``retrain="auto"`` keeps the saved tokenizer when both hold:

- it was trained with the same settings (every :class:`TokenizerConfig` field but ``retrain``
  and ``keep_tolerance``; for BPE also the same vocabulary size after the shrink for small
  corpora, :func:`musicml.tokenizers.bpe.effective_vocab_size`, which grows with the corpus), and
- it still *covers* the train split, measured on the split's documents encoded by it:

  - BPE (and miditok BPE): byte-level, so every text encodes; coverage is compression. For every
    format of the train split, bytes of text per token (``<bos>`` and the format token left out)
    is at least ``(1 - keep_tolerance)`` times that format's figure on the tokenizer's own
    training data (recorded when it was trained). A format it was not trained on: not covered.
  - characters: no character of the train split maps to ``<|unk|>``.
  - miditok events without BPE: always (the vocabulary is set by the event settings, not by data).

``always`` trains every time; ``never`` keeps any saved tokenizer (trains only when none is
saved). The decision, its reason and the figures go to ``tokenizer_info.json`` (``retrain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from musicml.tokenizers.config import RETRAIN_FIELDS, RETRAIN_MODES, TokenizerConfig

KEPT, TRAINED = "kept", "trained"


def training_settings(cfg: TokenizerConfig) -> dict:
    """The settings a tokenizer was trained with (what ``auto`` compares)."""
    return {k: v for k, v in asdict(cfg).items() if k not in RETRAIN_FIELDS}


def measure(codec, formats: Sequence[str], texts_bytes: Sequence[int], docs: Sequence[Sequence[int]]) -> dict:
    """Figures of ``docs`` (``codec``'s encodings of texts of ``texts_bytes`` UTF-8 bytes, one
    format each): ``bytes_per_token`` per format (body tokens: ``<bos> <fmt>`` left out),
    ``documents``, ``bytes``, ``tokens`` and, for characters, ``unknown_tokens``."""
    if not len(formats) == len(texts_bytes) == len(docs):
        raise ValueError(f"{len(formats)} formats, {len(texts_bytes)} byte counts, {len(docs)} documents")
    nbytes: dict[str, int] = {}
    ntok: dict[str, int] = {}
    for f, b, d in zip(formats, texts_bytes, docs):
        nbytes[f] = nbytes.get(f, 0) + int(b)
        ntok[f] = ntok.get(f, 0) + max(0, len(d) - 2)
    out = {"documents": len(docs), "bytes": sum(nbytes.values()), "tokens": sum(ntok.values()),
           "bytes_per_token": {f: round(nbytes[f] / ntok[f], 6) for f in sorted(nbytes) if ntok[f]}}
    if codec.kind == "char":
        unk = codec.tok.unk_id
        out["unknown_tokens"] = int(sum(int(np.count_nonzero(np.asarray(d[2:]) == unk)) for d in docs))
    return out


@dataclass
class RetrainDecision:
    """Whether the saved tokenizer was kept, why, and the figures it was decided on."""

    action: str  # kept | trained
    reason: str
    mode: str
    figures: dict = field(default_factory=dict)

    @property
    def keep(self) -> bool:
        return self.action == KEPT

    def to_dict(self) -> dict:
        return asdict(self)


def check_mode(mode: str) -> str:
    if mode not in RETRAIN_MODES:
        raise ValueError(f"unknown retrain mode {mode!r}; choose one of {RETRAIN_MODES}")
    return mode


def settings_differ(cfg: TokenizerConfig, saved_info: dict, train_bytes: int) -> str | None:
    """Why the saved tokenizer's settings are not ``cfg``'s (None when they are the same)."""
    saved = saved_info.get("config")
    if not isinstance(saved, dict):
        return "the saved tokenizer has no recorded settings"
    want = training_settings(cfg)
    diff = {k: (saved.get(k), v) for k, v in want.items() if saved.get(k) != v}
    if diff:
        return "trained with other settings: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
    if cfg.kind == "bpe":
        from musicml.tokenizers.bpe import effective_vocab_size

        before = effective_vocab_size(cfg.vocab_size, int(saved_info.get("train_bytes", 0)))
        now = effective_vocab_size(cfg.vocab_size, train_bytes)
        if before != now:
            return f"the vocabulary for {train_bytes} train bytes is {now} tokens, the saved one was sized {before}"
    return None


def covers(cfg: TokenizerConfig, saved_info: dict, figures: dict) -> str | None:
    """Why the saved tokenizer no longer covers the train split of ``figures`` (None: it does)."""
    kind = saved_info.get("kind", "bpe")
    if kind == "char":
        unknown = int(figures.get("unknown_tokens", 0))
        return None if unknown == 0 else f"{unknown} characters of the train split are not in its vocabulary"
    if kind != "bpe" and not saved_info.get("bpe", False):
        return None  # miditok events: the vocabulary is the event settings'
    trained = saved_info.get("bytes_per_token")
    if not isinstance(trained, dict) or not trained:
        return "no bytes-per-token figure recorded for its training data"
    for fmt, now in sorted(figures.get("bytes_per_token", {}).items()):
        if fmt not in trained:
            return f"format {fmt!r} is new to it (trained on {sorted(trained)})"
        floor = (1 - cfg.keep_tolerance) * float(trained[fmt])
        if now < floor:
            return (f"{fmt}: {now:.4f} bytes per token on the train split, below {floor:.4f} "
                    f"({1 - cfg.keep_tolerance:.0%} of {float(trained[fmt]):.4f} on its training data)")
    return None


def decide(cfg: TokenizerConfig, saved_info: dict | None, figures: dict | None) -> RetrainDecision:
    """Keep or train, for ``cfg.retrain``: ``saved_info`` is the saved tokenizer's info (None:
    none saved), ``figures`` :func:`measure` of the train split under it."""
    mode = check_mode(cfg.retrain)
    figures = figures or {}
    if mode == "always":
        return RetrainDecision(TRAINED, "retrain: always", mode)
    if saved_info is None:
        return RetrainDecision(TRAINED, "no saved tokenizer", mode)
    compared = {"train_split": figures, "trained_on": {k: saved_info.get(k) for k in ("bytes_per_token", "train_bytes", "train_docs") if k in saved_info},
                "keep_tolerance": cfg.keep_tolerance}
    if mode == "never":
        return RetrainDecision(KEPT, "retrain: never", mode, compared)
    why = settings_differ(cfg, saved_info, int(figures.get("bytes", 0))) or covers(cfg, saved_info, figures)
    if why:
        return RetrainDecision(TRAINED, why, mode, compared)
    return RetrainDecision(KEPT, "same settings and it covers the train split", mode, compared)
