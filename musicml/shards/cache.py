"""Token documents cached per (document text, tokenizer): a re-run encodes only new text.

A document's key is a hash of its format and text (:func:`doc_keys`); its tokens (what
``Codec.encode_documents`` gives: ``<bos> <fmt> body``) are stored under
``<dir>/<tokenizer digest[:16]>/part-<hash>.parquet`` (columns ``key``, ``tokens``), one part per
call that encoded something new. Encoders are deterministic, so a cached document is exactly
what encoding it again would give, and shards built from the cache are byte-identical to shards
built from scratch. The folders of other tokenizers are removed but for the newest
``keep_tokenizers`` (a tokenizer kept, retrained and then restored finds its documents again).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from musicml.lake import write_parquet

CACHE_DIR = "token_cache"  # under the lake's shards folder
CACHE_SCHEMA = pa.schema([("key", pa.string()), ("tokens", pa.list_(pa.int32()))])


def doc_keys(formats: Sequence[str], texts: Sequence[str]) -> list[str]:
    """The cache key of each document: blake2b-128 of ``format``, NUL, UTF-8 text (hex)."""
    if len(formats) != len(texts):
        raise ValueError(f"{len(formats)} formats for {len(texts)} texts")
    return [hashlib.blake2b(f"{f}\0{t}".encode(), digest_size=16).hexdigest() for f, t in zip(formats, texts)]


@dataclass
class CacheStats:
    """What one :meth:`TokenCache.encode` call did."""

    documents: int = 0
    cached: int = 0  # documents found in the cache
    encoded: int = 0  # distinct documents encoded now (and added to the cache)
    encode_s: float = 0.0

    def to_dict(self) -> dict:
        return {"documents": self.documents, "cached": self.cached, "encoded": self.encoded,
                "encode_s": round(self.encode_s, 3)}


class TokenCache:
    """The cached token documents of one tokenizer (``digest``) under ``directory``."""

    def __init__(self, directory: str | Path, digest: str, *, keep_tokenizers: int = 2):
        if not digest:
            raise ValueError("a token cache needs the tokenizer's digest")
        self.root = Path(directory)
        self.dir = self.root / digest[:16]
        self.keep_tokenizers = keep_tokenizers

    def _load(self, wanted: set[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for part in sorted(self.dir.glob("part-*.parquet")):
            try:
                table = pq.read_table(part, schema=CACHE_SCHEMA)
            except FileNotFoundError:  # pruned by another writer meanwhile: encoded again
                continue
            keys = table.column("key").to_pylist()
            col = table.column("tokens").combine_chunks()
            offsets = col.offsets.to_numpy()
            values = col.values.to_numpy(zero_copy_only=False)
            for i, k in enumerate(keys):
                if k in wanted and k not in found:
                    found[k] = values[offsets[i]:offsets[i + 1]]
        return found

    def encode(self, codec, formats: Sequence[str], texts: Sequence[str],
               keys: Sequence[str] | None = None) -> tuple[list[np.ndarray], CacheStats]:
        """Token ids (int32 arrays) of every document, from the cache or encoded by ``codec``
        (then cached); ``keys`` are :func:`doc_keys` of the documents when already known."""
        keys = list(keys) if keys is not None else doc_keys(formats, texts)
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        found = self._load(set(keys))
        stats = CacheStats(documents=len(keys), cached=sum(k in found for k in keys))
        todo: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found and k not in todo:
                todo[k] = i
        if todo:
            t0 = time.perf_counter()
            idx = list(todo.values())
            new = codec.encode_documents([formats[i] for i in idx], [texts[i] for i in idx])
            stats.encode_s = time.perf_counter() - t0
            stats.encoded = len(new)
            arrays = [np.asarray(t, dtype=np.int32) for t in new]
            found.update(zip(todo, arrays))
            self._write(list(todo), arrays)
        return [found[k] for k in keys], stats

    def _write(self, keys: list[str], arrays: list[np.ndarray]) -> None:
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        table = pa.table({"key": keys, "tokens": list_array(arrays)}, schema=CACHE_SCHEMA)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_parquet(self.dir / f"part-{name}.parquet", table)
        self.dir.touch()  # newest tokenizer last in mtime order
        self._prune()

    def _prune(self) -> None:
        others = sorted((d for d in self.root.iterdir() if d.is_dir() and d != self.dir),
                        key=lambda d: d.stat().st_mtime, reverse=True)
        for old in others[max(0, self.keep_tokenizers - 1):]:
            shutil.rmtree(old, ignore_errors=True)


def list_array(arrays: Sequence[np.ndarray | Sequence[int]]) -> pa.ListArray:
    """``list<int32>`` of token documents, built from one offsets and one values buffer."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = (np.concatenate([np.asarray(a, dtype=np.int32) for a in arrays]) if len(arrays)
              else np.zeros(0, dtype=np.int32))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32()))
