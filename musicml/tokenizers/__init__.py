"""Tokenizers behind one small interface: byte-level BPE (default), characters (the baselines'),
or miditok's MIDI event tokens (``remi``, ``tsd``, ``midilike``, ``structured``; see
:mod:`musicml.tokenizers.events`).

``train_codec`` trains any kind on the train split only; ``load_codec`` reads one back from its
folder (JSON only). Documents are always ``<bos> <fmt> body``: text for ``bpe`` / ``char``,
event tokens of the piece's notes for the event kinds (whose codecs also decode to a Score).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from musicml.lake import atomic_path, sha256_bytes, write_json
from musicml.tokenizers import bpe
from musicml.tokenizers.char import CharTokenizer
from musicml.tokenizers.config import TokenizerConfig

TEXT_KINDS = ("bpe", "char")
EVENT_KINDS = ("remi", "tsd", "midilike", "structured")  # miditok; one sequence, one vocabulary
KINDS = TEXT_KINDS + EVENT_KINDS


class Codec:
    """What the pipeline needs of a tokenizer, whatever its kind."""

    kind: str
    info: dict
    decodes_to_score = False  # True: ids decode to a symusic Score (``decode_score``), not text

    def encode_documents(self, formats: Sequence[str], texts: Sequence[str]) -> list[list[int]]:
        raise NotImplementedError

    def prompt_ids(self, fmt: str, text: str = "") -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def token_bytes(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def bos_id(self) -> int:
        return int(self.info["bos_id"])

    @property
    def vocab_size(self) -> int:
        return int(self.info["vocab_size"])

    @property
    def digest(self) -> str:
        return str(self.info["digest"])

    def save(self, directory: Path) -> Path:
        raise NotImplementedError


class BpeCodec(Codec):
    kind = "bpe"

    def __init__(self, tok, info: bpe.TokenizerInfo):
        self.tok, self.info = tok, {**asdict(info), "kind": "bpe"}

    def encode_documents(self, formats, texts):
        return bpe.encode_documents(self.tok, formats, texts)

    def prompt_ids(self, fmt, text=""):
        return bpe.prompt_ids(self.tok, fmt, text)

    def decode(self, ids):
        return bpe.decode(self.tok, ids)

    def token_bytes(self):
        return bpe.token_bytes(self.tok)

    def save(self, directory):
        known = set(bpe.TokenizerInfo.__dataclass_fields__)  # info also holds the retrain figures
        paths = bpe.save(self.tok, bpe.TokenizerInfo(**{k: v for k, v in self.info.items() if k in known}), directory)
        write_json(paths["info"], self.info)
        return paths["tokenizer"]


class CharCodec(Codec):
    """One token per character; unseen characters map to ``<|unk|>`` (0 bytes, counted)."""

    kind = "char"

    def __init__(self, tok: CharTokenizer, info: dict):
        self.tok, self.info = tok, info

    def encode_documents(self, formats, texts):
        fmt_ids = {f: self.tok.special_id(t) for f, t in bpe.FORMAT_TOKENS.items()}
        return [[self.tok.bos_id, fmt_ids[f], *self.tok.encode(t)] for f, t in zip(formats, texts)]

    def prompt_ids(self, fmt, text=""):
        return [self.tok.bos_id, self.tok.special_id(bpe.FORMAT_TOKENS[fmt]), *self.tok.encode(text)]

    def decode(self, ids):
        return self.tok.decode(ids)

    def token_bytes(self):
        return self.tok.token_bytes()

    def save(self, directory):
        path = Path(directory) / "tokenizer.json"
        self.tok.save(path)
        write_json(Path(directory) / "tokenizer_info.json", self.info)
        _save_token_bytes(self, Path(directory))
        return path


def _save_token_bytes(codec: Codec, directory: Path) -> None:
    with atomic_path(directory / "token_bytes.npy") as tmp:
        np.save(tmp, codec.token_bytes(), allow_pickle=False)


def train_codec(texts: Sequence[str], config: TokenizerConfig | None = None, *,
                formats: Sequence[str] | None = None, **overrides) -> Codec:
    """Train a tokenizer on ``texts`` (the train split only): ``config`` with keyword overrides
    (``kind=``, ``vocab_size=``, ... of :class:`TokenizerConfig`).

    Event kinds need ``formats`` (one per text: each piece is read as a Score); with
    ``miditok_bpe`` they learn miditok's BPE up to ``vocab_size`` on these pieces.
    """
    from musicml.settings import merged

    cfg = merged(TokenizerConfig, config, overrides)
    kind, vocab_size, pretokenizer, min_frequency = cfg.kind, cfg.vocab_size, cfg.pretokenizer, cfg.min_frequency
    if kind in _ALL_MIDITOK_KINDS:
        from musicml.tokenizers.events import EventCodec

        if formats is None:
            raise ValueError(f"tokenizer kind {kind!r} needs the format of every text (formats=...)")
        if len(formats) != len(texts):
            raise ValueError(f"{len(formats)} formats for {len(texts)} texts")
        return EventCodec.train(formats, texts, kind=kind, bpe=cfg.miditok_bpe, vocab_size=vocab_size)
    if kind == "bpe":
        tok, info = bpe.train_bpe(texts, vocab_size=vocab_size, pretokenizer=pretokenizer,
                                  min_frequency=min_frequency, formats=formats)
        return BpeCodec(tok, info)
    if kind == "char":
        tok = CharTokenizer.train(list(texts), special_tokens=list(bpe.FORMAT_TOKENS.values()))
        info = {"kind": "char", "vocab_size": tok.vocab_size, "requested_vocab_size": tok.vocab_size,
                "bos_id": tok.bos_id, "pretokenizer": "char", "train_docs": len(texts),
                "train_bytes": sum(len(t.encode("utf-8")) for t in texts),
                "format_ids": {f: tok.special_id(t) for f, t in bpe.FORMAT_TOKENS.items()}}
        info["digest"] = sha256_bytes(json.dumps(tok.to_dict(), sort_keys=True).encode())
        return CharCodec(tok, info)
    raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {KINDS}")


# miditok's other tokenizations: refused by events.check_kind with the reason
_ALL_MIDITOK_KINDS = EVENT_KINDS + ("cpword", "octuple", "mumidi", "mmm", "pertok", "beat")


def save_codec(codec: Codec, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = codec.save(directory)
    _save_token_bytes(codec, directory)
    return path


def load_codec(directory: Path) -> Codec:
    directory = Path(directory)
    info = json.loads((directory / "tokenizer_info.json").read_text())
    if info.get("kind") in EVENT_KINDS:
        from musicml.tokenizers.events import EventCodec

        return EventCodec.load(directory)
    if info.get("kind", "bpe") == "char":
        tok = CharTokenizer.load(directory / "tokenizer.json")
        if info.get("digest") and sha256_bytes(json.dumps(tok.to_dict(), sort_keys=True).encode()) != info["digest"]:
            raise ValueError(f"{directory}: tokenizer.json does not match tokenizer_info.json's digest")
        return CharCodec(tok, info)
    tok, binfo = bpe.load(directory)
    if binfo.digest and sha256_bytes(tok.to_str().encode("utf-8")) != binfo.digest:
        raise ValueError(f"{directory}: tokenizer.json does not match tokenizer_info.json's digest")
    codec = BpeCodec(tok, binfo)
    codec.info = {**info, **codec.info}  # with what it was trained with and the retrain decision
    return codec
