"""Token shards: manifest counts, BOS-first rows, deterministic bytes, verification."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from musicml.shards import SHARD_SCHEMA, Doc, read_manifest, shard_paths, verify, write_shards

BOS = 0


def _docs(split: str, n: int, length: int = 10) -> list[Doc]:
    out = []
    for i in range(n):
        tokens = [BOS, 2 + i % 3] + [(i * 7 + j) % 50 + 4 for j in range(length + i % 5)]
        out.append(Doc(f"{split}-{i:04d}", f"w{i // 2}", "abc", (i % 3) - 1, tokens))
    return out


@pytest.fixture
def corpus() -> dict[str, list[Doc]]:
    return {"train": _docs("train", 40), "valid": _docs("valid", 5), "test": _docs("test", 3)}


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_manifest_counts(corpus, tmp_path: Path) -> None:
    manifest = write_shards(corpus, tmp_path, tokens_per_shard=100, seed=3, extra={"vocab_size": 64})
    assert manifest == read_manifest(tmp_path)
    assert manifest["tokens_per_shard"] == 100 and manifest["seed"] == 3 and manifest["vocab_size"] == 64
    assert sorted(manifest["splits"]) == ["test", "train", "valid"]
    for split, docs in corpus.items():
        info = manifest["splits"][split]
        assert info["rows"] == len(docs)
        assert info["tokens"] == sum(len(d.tokens) for d in docs)
        assert info["rows"] == sum(e["rows"] for e in info["shards"])
        assert info["tokens"] == sum(e["tokens"] for e in info["shards"])
        for i, e in enumerate(info["shards"]):
            assert e["file"] == f"{manifest['generation']}/{split}/shard_{i:05d}.parquet"
            table = pq.read_table(tmp_path / e["file"])
            assert table.num_rows == e["rows"]
            assert sum(len(t) for t in table.column("tokens").to_pylist()) == e["tokens"]
            assert len(e["sha256"]) == 64
    assert len(manifest["splits"]["train"]["shards"]) > 1  # 100 tokens per shard: several
    assert len(manifest["digest"]) == 64
    assert json.loads((tmp_path / "manifest.json").read_text())["digest"] == manifest["digest"]


def test_shards_close_at_token_budget(corpus, tmp_path: Path) -> None:
    manifest = write_shards(corpus, tmp_path, tokens_per_shard=100)
    for info in manifest["splits"].values():
        shards = info["shards"]
        for e in shards[:-1]:
            assert e["tokens"] >= 100  # a shard closes once it reaches the budget
        assert all(e["rows"] > 0 for e in shards)


def test_rows_schema_and_bos_first(corpus, tmp_path: Path) -> None:
    write_shards(corpus, tmp_path, tokens_per_shard=150)
    seen = {}
    for split, docs in corpus.items():
        paths = shard_paths(tmp_path, split)
        assert paths and all(p.exists() for p in paths)
        for p in paths:
            assert pq.read_schema(p).remove_metadata().equals(SHARD_SCHEMA)
            assert pq.read_metadata(p).row_group(0).column(0).compression == "ZSTD"
            for row in _rows(p):
                assert row["tokens"][0] == BOS
                seen[row["doc_id"]] = row
        assert {d.doc_id for d in docs} <= set(seen)
    for docs in corpus.values():
        for d in docs:
            row = seen[d.doc_id]
            assert (row["work_id"], row["format"], row["shift"], row["tokens"]) == (d.work_id, d.format, d.shift, d.tokens)


def test_train_shuffled_by_seed_valid_in_id_order(corpus, tmp_path: Path) -> None:
    write_shards(corpus, tmp_path / "s0", seed=0)
    write_shards(corpus, tmp_path / "s1", seed=1)
    train0 = [r["doc_id"] for p in shard_paths(tmp_path / "s0", "train") for r in _rows(p)]
    train1 = [r["doc_id"] for p in shard_paths(tmp_path / "s1", "train") for r in _rows(p)]
    assert sorted(train0) == sorted(train1) == sorted(d.doc_id for d in corpus["train"])
    assert train0 != sorted(train0) and train0 != train1
    valid = [r["doc_id"] for p in shard_paths(tmp_path / "s0", "valid") for r in _rows(p)]
    assert valid == sorted(valid)


def test_deterministic_bytes(corpus, tmp_path: Path) -> None:
    m1 = write_shards(corpus, tmp_path / "a", tokens_per_shard=120, seed=7)
    shuffled_input = {k: list(reversed(v)) for k, v in reversed(list(corpus.items()))}
    m2 = write_shards(shuffled_input, tmp_path / "b", tokens_per_shard=120, seed=7)
    assert m1 == m2
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    # re-writing in place gives the same bytes; the generation before is kept, older ones go
    big = write_shards({"train": _docs("train", 200)}, tmp_path / "a", tokens_per_shard=120, seed=7)
    m3 = write_shards(corpus, tmp_path / "a", tokens_per_shard=120, seed=7)
    assert m3 == m1
    gens = sorted(p.name for p in (tmp_path / "a").glob("gen-*"))
    assert gens == sorted({m1["generation"], big["generation"]})
    write_shards(corpus, tmp_path / "a", tokens_per_shard=120, seed=7)
    again = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.parquet"))
    assert again == sorted(r for r in files_a if r.suffix == ".parquet")


def test_killed_rewrite_leaves_the_old_generation_whole(corpus, tmp_path: Path, monkeypatch) -> None:
    from musicml.shards import manifest as mod

    old = write_shards(corpus, tmp_path, tokens_per_shard=100)
    calls = []

    def dying_write(path, table, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would, mid-way through the new generation
        return real(path, table, **kw)

    real = mod.write_parquet
    monkeypatch.setattr(mod, "write_parquet", dying_write)
    changed = {k: v[:-1] for k, v in corpus.items()}
    with pytest.raises(KeyboardInterrupt):
        write_shards(changed, tmp_path, tokens_per_shard=100)
    monkeypatch.setattr(mod, "write_parquet", real)
    assert read_manifest(tmp_path) == old and verify(tmp_path) == []  # readers still see a whole set
    new = write_shards(changed, tmp_path, tokens_per_shard=100)  # the rerun completes and cleans up
    assert verify(tmp_path) == [] and new["digest"] != old["digest"]
    assert not list(tmp_path.glob(".gen-*"))


def test_digest_changes_with_content(corpus, tmp_path: Path) -> None:
    m1 = write_shards(corpus, tmp_path / "a")
    corpus["valid"][0].tokens.append(9)
    m2 = write_shards(corpus, tmp_path / "b")
    assert m1["digest"] != m2["digest"]


def test_empty_split_has_one_empty_shard(tmp_path: Path) -> None:
    manifest = write_shards({"train": _docs("train", 3), "test": []}, tmp_path)
    assert manifest["splits"]["test"]["rows"] == 0 and len(manifest["splits"]["test"]["shards"]) == 1
    assert pq.read_table(tmp_path / manifest["generation"] / "test" / "shard_00000.parquet").num_rows == 0
    assert verify(tmp_path) == []


def test_verify_ok_tampered_and_missing(corpus, tmp_path: Path) -> None:
    manifest = write_shards(corpus, tmp_path, tokens_per_shard=100)
    assert verify(tmp_path) == []
    first = manifest["splits"]["train"]["shards"][0]["file"]
    second = manifest["splits"]["train"]["shards"][1]["file"]
    data = bytearray((tmp_path / first).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / first).write_bytes(bytes(data))
    (tmp_path / second).unlink()
    problems = verify(tmp_path)
    assert f"{first}: sha256 differs from the manifest" in problems
    assert f"{second}: missing" in problems
    assert len(problems) == 2


def test_verify_row_count_mismatch(corpus, tmp_path: Path) -> None:
    write_shards(corpus, tmp_path)
    manifest = read_manifest(tmp_path)
    manifest["splits"]["valid"]["rows"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert verify(tmp_path) == ["valid: row count differs from its shards"]


def test_shard_paths_unknown_split(corpus, tmp_path: Path) -> None:
    write_shards(corpus, tmp_path)
    assert shard_paths(tmp_path, "holdout") == []
