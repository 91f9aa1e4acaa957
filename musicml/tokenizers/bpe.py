"""Byte-level BPE over the canonical text of scores, trained with HF ``tokenizers``.

A document is ``<|bos|> <|fmt|> text``: the format token (``<|atex|>``, ``<|abc|>``,
``<|midi|>``) lets one model be prompted per format. Special tokens have zero bytes in
:func:`token_bytes`, so bits-per-byte counts only the music text (nanochat's definition).
The tokenizer is saved as JSON (never pickle) beside a small metadata JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from musicml.lake import atomic_path, sha256_bytes, write_json, write_text
from musicml.tokenizers.config import TokenizerConfig

BOS = "<|bos|>"
FORMAT_TOKENS = {"atex": "<|atex|>", "abc": "<|abc|>", "midi": "<|midi|>"}
SPECIAL_TOKENS = [BOS, *FORMAT_TOKENS.values()]

# nanochat's split pattern (GPT-4 style, numbers in runs of at most 2 digits).
NANOCHAT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def _music_pattern() -> str:
    from musicml.formats.alphatex.pretokenize import ALPHATEX_PRETOKENIZE_PATTERN

    return ALPHATEX_PRETOKENIZE_PATTERN


PRETOKENIZERS = ("music", "nanochat", "bytelevel")
AUTO = "auto"  # the pre-tokenization measured best for the corpus' formats (PRETOKENIZER_BY_FORMAT)
DEFAULT_PRETOKENIZER = AUTO

# The pre-tokenization per format: the lowest val bpb at equal training bytes measured by
# `python bench/bench_tokenizers.py` (2026-12-01, 2-core CPU, loaded; BPE 2048, GPT d2 trained
# on 500,000 bytes of train-split text per run; val bpb at equal bytes, equal compute beside):
#   atex (599 alphaTex files):  music 1.148 (1.230) | bytelevel 1.374 (1.374) | nanochat 1.454 (1.452)
#   abc (120 music21 files):    music 2.106 (2.030) | bytelevel 2.030 (2.030) | nanochat 2.056 (2.041)
#   midi (40 POP909 songs):     music 1.330 (1.213) | bytelevel 1.196 (1.196) | nanochat 1.214 (1.249)
# A corpus of several formats uses the choice of the format with the most training bytes.
PRETOKENIZER_BY_FORMAT: dict[str, str] = {"atex": "music", "abc": "bytelevel", "midi": "bytelevel"}


def resolve_pretokenizer(name: str, formats: Sequence[str] | None = None,
                         texts: Sequence[str] | None = None) -> str:
    """The pre-tokenization ``name`` stands for: itself, or for ``auto`` the per-format choice
    (:data:`PRETOKENIZER_BY_FORMAT`) of the format holding the most bytes of ``texts`` (one
    format per text). Raises ValueError for an unknown name, or ``auto`` without formats."""
    if name in PRETOKENIZERS:
        return name
    if name != AUTO:
        raise ValueError(f"unknown pretokenizer {name!r}; choose one of {(AUTO, *PRETOKENIZERS)}")
    if not formats:
        raise ValueError("pretokenizer 'auto' needs the format of every text (formats=...)")
    weight: dict[str, int] = {}
    for i, fmt in enumerate(formats):
        if fmt not in PRETOKENIZER_BY_FORMAT:
            raise ValueError(f"pretokenizer 'auto' has no choice for format {fmt!r}")
        weight[fmt] = weight.get(fmt, 0) + (len(texts[i].encode("utf-8")) if texts is not None else 1)
    top = max(weight, key=lambda f: (weight[f], f))
    return PRETOKENIZER_BY_FORMAT[top]


@dataclass
class TokenizerInfo:
    vocab_size: int
    requested_vocab_size: int
    bos_id: int
    format_ids: dict[str, int]
    pretokenizer: str
    train_docs: int
    train_bytes: int
    digest: str = ""


def effective_vocab_size(requested: int, train_bytes: int) -> int:
    """Shrink the vocabulary for tiny corpora: at most one token per 64 training bytes.

    Never below 256 byte tokens + specials + 64 merges; rounded down to a multiple of 64.
    """
    floor = 256 + len(SPECIAL_TOKENS) + 64
    size = min(requested, max(floor, train_bytes // 64))
    return max(floor, size - size % 64) if size > floor else floor


def _pre_tokenizer(name: str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if name == "bytelevel":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pattern = NANOCHAT_PATTERN if name == "nanochat" else _music_pattern() if name == "music" else None
    if pattern is None:
        raise ValueError(f"unknown pretokenizer {name!r}; choose one of {PRETOKENIZERS}")
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"), byte_level])


def train_bpe(
    texts: Sequence[str], *, vocab_size: int = TokenizerConfig.vocab_size, pretokenizer: str = DEFAULT_PRETOKENIZER,
    min_frequency: int = TokenizerConfig.min_frequency, formats: Sequence[str] | None = None,
) -> tuple[Tokenizer, TokenizerInfo]:
    """Train BPE on ``texts`` (the train split only); returns the tokenizer and its metadata.

    ``formats`` (one per text) resolves ``pretokenizer="auto"`` (:func:`resolve_pretokenizer`);
    the metadata records the pre-tokenization actually used."""
    if formats is not None and len(formats) != len(texts):
        raise ValueError(f"{len(formats)} formats for {len(texts)} texts")
    pretokenizer = resolve_pretokenizer(pretokenizer, formats, texts)
    train_bytes = sum(len(t.encode("utf-8")) for t in texts)
    size = effective_vocab_size(vocab_size, train_bytes)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer(pretokenizer)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    info = TokenizerInfo(
        vocab_size=tok.get_vocab_size(),
        requested_vocab_size=vocab_size,
        bos_id=tok.token_to_id(BOS),
        format_ids={f: tok.token_to_id(t) for f, t in FORMAT_TOKENS.items()},
        pretokenizer=pretokenizer,
        train_docs=len(texts),
        train_bytes=train_bytes,
    )
    info.digest = sha256_bytes(tok.to_str().encode("utf-8"))
    return tok, info


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode`` (the ByteLevel alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tok: Tokenizer) -> np.ndarray:
    """UTF-8 byte length of every token id (0 for special tokens), int32."""
    dec = _byte_decoder()
    specials = set(SPECIAL_TOKENS)
    out = np.zeros(tok.get_vocab_size(), dtype=np.int32)
    for token, idx in tok.get_vocab().items():
        out[idx] = 0 if token in specials else sum(1 for ch in token if ch in dec)
    return out


def encode_documents(tok: Tokenizer, formats: Iterable[str], texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each document: BOS, the format token, then the text."""
    bos = tok.token_to_id(BOS)
    fmt_ids = [tok.token_to_id(FORMAT_TOKENS[f]) for f in formats]
    encs = tok.encode_batch(list(texts), add_special_tokens=False)
    return [[bos, f, *e.ids] for f, e in zip(fmt_ids, encs)]


def prompt_ids(tok: Tokenizer, fmt: str, text: str = "") -> list[int]:
    """The ids a generation for ``fmt`` starts from: BOS, the format token, the prompt text."""
    ids = [tok.token_to_id(BOS), tok.token_to_id(FORMAT_TOKENS[fmt])]
    return ids + (tok.encode(text, add_special_tokens=False).ids if text else [])


def decode(tok: Tokenizer, ids: Sequence[int]) -> str:
    """Text of ``ids`` without special tokens."""
    return tok.decode(list(ids), skip_special_tokens=True)


def save(tok: Tokenizer, info: TokenizerInfo, directory: Path) -> dict[str, Path]:
    directory = Path(directory)
    paths = {"tokenizer": directory / "tokenizer.json", "info": directory / "tokenizer_info.json",
             "token_bytes": directory / "token_bytes.npy"}
    write_text(paths["tokenizer"], tok.to_str(pretty=False))
    write_json(paths["info"], asdict(info))
    tb = token_bytes(tok)
    with atomic_path(paths["token_bytes"]) as tmp:
        np.save(tmp, tb, allow_pickle=False)
    return paths


def load(directory: Path) -> tuple[Tokenizer, TokenizerInfo]:
    directory = Path(directory)
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    raw = json.loads((directory / "tokenizer_info.json").read_text())
    known = set(TokenizerInfo.__dataclass_fields__)
    info = TokenizerInfo(**{k: v for k, v in raw.items() if k in known})
    return tok, info


def load_token_bytes(directory: Path) -> np.ndarray:
    return np.load(Path(directory) / "token_bytes.npy", allow_pickle=False)
