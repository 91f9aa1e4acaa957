"""Character-level tokenizer: one token per Unicode character seen in the training text.

Ids 0.. are the special tokens (``<|bos|>``, ``<|unk|>``, then any extra ones), followed by the
training characters in sorted order, so the vocabulary is a pure function of the text.

Unseen characters: ``encode`` maps a character not in the vocabulary to ``<|unk|>``, and
counts it in ``self.unknown_counts`` (a Counter by character; ``encode_with_report`` returns
the counts of one call). ``decode`` renders ``<|unk|>`` as U+FFFD and drops other special
tokens unless ``keep_special=True``. Saved as JSON (never pickle).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from musicml.lake import write_text

BOS = "<|bos|>"
UNK = "<|unk|>"
REPLACEMENT = "\ufffd"


class CharTokenizer:
    kind = "char"

    def __init__(self, chars: Iterable[str], special_tokens: Iterable[str] = ()):
        specials = [BOS, UNK] + [s for s in special_tokens if s not in (BOS, UNK)]
        chars = sorted(set(chars))
        for c in chars:
            if len(c) != 1:
                raise ValueError(f"not a single character: {c!r}")
        self.special_tokens = specials
        self.itos: list[str] = specials + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.char_to_id = {c: i + len(specials) for i, c in enumerate(chars)}
        self.unknown_counts: Counter[str] = Counter()

    @classmethod
    def train(cls, texts: Iterable[str] | str, special_tokens: Iterable[str] = ()) -> CharTokenizer:
        if isinstance(texts, str):
            texts = [texts]
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(seen, special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    def special_id(self, token: str) -> int:
        return self.stoi[token]

    def encode_with_report(self, text: str, *, bos: bool = False) -> tuple[list[int], Counter]:
        """Token ids of ``text`` and a Counter of the unseen characters mapped to ``<|unk|>``."""
        unk, table = self.unk_id, self.char_to_id
        ids = [self.bos_id] if bos else []
        missing: Counter[str] = Counter()
        for ch in text:
            i = table.get(ch)
            if i is None:
                missing[ch] += 1
                i = unk
            ids.append(i)
        self.unknown_counts.update(missing)
        return ids, missing

    def encode(self, text: str, *, bos: bool = False) -> list[int]:
        return self.encode_with_report(text, bos=bos)[0]

    def decode(self, ids: Iterable[int], *, keep_special: bool = False) -> str:
        n_special = len(self.special_tokens)
        out = []
        for i in ids:
            i = int(i)
            if i >= n_special:
                out.append(self.itos[i])
            elif i == self.unk_id:
                out.append(REPLACEMENT)
            elif keep_special:
                out.append(self.itos[i])
        return "".join(out)

    def token_bytes(self) -> np.ndarray:
        """UTF-8 byte length of every token (0 for special tokens), int32, for bits per byte.
        ``<|unk|>`` counts 0: an unseen character is scored by neither side."""
        n_special = len(self.special_tokens)
        return np.array([0] * n_special + [len(c.encode("utf-8")) for c in self.itos[n_special:]],
                        dtype=np.int32)

    def to_dict(self) -> dict:
        n_special = len(self.special_tokens)
        return {"kind": self.kind, "special_tokens": self.special_tokens,
                "chars": self.itos[n_special:]}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        if d.get("kind") != cls.kind:
            raise ValueError(f"not a char tokenizer: kind={d.get('kind')!r}")
        tok = cls(d["chars"], d["special_tokens"])
        if tok.special_tokens != d["special_tokens"] or tok.itos[len(tok.special_tokens):] != d["chars"]:
            raise ValueError("char tokenizer JSON is not in canonical order")
        return tok

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temporary file, then rename); byte-identical for equal vocabularies."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        write_text(path, data)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
