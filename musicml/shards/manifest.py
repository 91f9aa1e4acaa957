"""Sharded parquet of tokenized documents, with a manifest.

Layout: ``<dir>/gen-<digest>/<split>/shard_00000.parquet`` (zstd), one document per row with
columns ``doc_id``, ``work_id``, ``format``, ``shift`` and ``tokens`` (list<int32>, starting
with BOS). Train rows are shuffled with a seed; valid/test keep id order. ``manifest.json``
lists every shard with its rows, tokens and sha256, and a digest over all of them that names
the data.

Generations: a rewrite goes to a new folder beside the current one; only when every shard is
written does ``manifest.json`` switch to it (one atomic rename), so a reader, or a run killed
mid-way, never sees a manifest listing shards that are missing or half written. The previous
generation is kept (a training may still be reading it); older ones are removed.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from musicml.lake import read_json, sha256_file, write_json, write_parquet
from musicml.locks import file_lock
from musicml.shards.cache import list_array
from musicml.shards.config import ShardsConfig

SHARD_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("work_id", pa.string()),
        ("format", pa.string()),
        ("shift", pa.int8()),
        ("tokens", pa.list_(pa.int32())),
    ]
)


@dataclass
class Doc:
    doc_id: str
    work_id: str
    format: str
    shift: int
    tokens: Sequence[int]  # a list or an int array


def write_shards(
    docs_by_split: dict[str, list[Doc]],
    directory: Path,
    *,
    tokens_per_shard: int = ShardsConfig.tokens_per_shard,
    seed: int = ShardsConfig.seed,
    extra: dict | None = None,
) -> dict:
    """Write every split's documents as a new shard generation, switch the manifest to it, and
    return the manifest. Re-writing the same documents gives the same bytes and names."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".write.lock"):
        for stale in directory.glob(".gen-*"):  # left by a writer that was killed
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".gen-", dir=directory))
        manifest = _write_generation(docs_by_split, staging, tokens_per_shard, seed, extra)
        previous = _current_generation(directory)
        gen = f"gen-{manifest['digest'][:16]}"
        if (directory / gen).exists():  # the same content is already there, byte for byte
            shutil.rmtree(staging)
        else:
            os.replace(staging, directory / gen)
        for info in manifest["splits"].values():
            for e in info["shards"]:
                e["file"] = f"{gen}/{e['file']}"
        manifest["generation"] = gen
        write_json(directory / "manifest.json", manifest)  # the switch
        _remove_old(directory, keep={gen, previous})
    return manifest


def _current_generation(directory: Path) -> str | None:
    try:
        return read_manifest(directory).get("generation")
    except (OSError, ValueError):
        return None


def _remove_old(directory: Path, keep: set[str | None]) -> None:
    """Generations other than ``keep``, and shards of the flat layout of earlier versions."""
    for old in directory.glob("gen-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    for old in directory.glob("*/shard_*.parquet"):
        if not old.parent.name.startswith("gen-"):
            old.unlink()


def _write_generation(docs_by_split: dict[str, list[Doc]], directory: Path, tokens_per_shard: int, seed: int,
                      extra: dict | None) -> dict:
    manifest: dict = {"splits": {}, "tokens_per_shard": tokens_per_shard, "seed": seed, **(extra or {})}
    for split, docs in sorted(docs_by_split.items()):
        docs = sorted(docs, key=lambda d: d.doc_id)
        if split == "train":
            random.Random(seed).shuffle(docs)
        shards, batch, batch_tokens = [], [], 0
        for doc in docs:
            batch.append(doc)
            batch_tokens += len(doc.tokens)
            if batch_tokens >= tokens_per_shard:
                shards.append(batch)
                batch, batch_tokens = [], 0
        if batch or not shards:
            shards.append(batch)
        entries = []
        for i, chunk in enumerate(shards):
            path = directory / split / f"shard_{i:05d}.parquet"
            table = pa.table(
                {
                    "doc_id": [d.doc_id for d in chunk],
                    "work_id": [d.work_id for d in chunk],
                    "format": [d.format for d in chunk],
                    "shift": [d.shift for d in chunk],
                    "tokens": list_array([d.tokens for d in chunk]),
                },
                schema=SHARD_SCHEMA,
            )
            write_parquet(path, table)
            entries.append({"file": f"{split}/{path.name}", "rows": len(chunk),
                            "tokens": sum(len(d.tokens) for d in chunk), "sha256": sha256_file(path)})
        manifest["splits"][split] = {
            "shards": entries,
            "rows": sum(e["rows"] for e in entries),
            "tokens": sum(e["tokens"] for e in entries),
        }
    digest = hashlib.sha256()
    for split in sorted(manifest["splits"]):
        for e in manifest["splits"][split]["shards"]:
            digest.update(f"{e['file']}:{e['sha256']}\n".encode())
    manifest["digest"] = digest.hexdigest()
    return manifest


def read_manifest(directory: Path) -> dict:
    return read_json(Path(directory) / "manifest.json")


def shard_paths(directory: str | Path, split: str) -> list[Path]:
    """The shard files of ``split``: in manifest order, or sorted by name where no manifest is."""
    directory = Path(directory)
    if not (directory / "manifest.json").exists():
        return sorted((directory / split).glob("*.parquet"))
    manifest = read_manifest(directory)
    return [directory / e["file"] for e in manifest["splits"].get(split, {}).get("shards", [])]


def verify(directory: Path) -> list[str]:
    """Problems found re-checking every shard against the manifest (empty when all is well)."""
    problems = []
    manifest = read_manifest(directory)
    for split, info in manifest["splits"].items():
        for e in info["shards"]:
            path = Path(directory) / e["file"]
            if not path.exists():
                problems.append(f"{e['file']}: missing")
            elif sha256_file(path) != e["sha256"]:
                problems.append(f"{e['file']}: sha256 differs from the manifest")
        if info["rows"] != sum(e["rows"] for e in info["shards"]):
            problems.append(f"{split}: row count differs from its shards")
    return problems
