"""Byte-level BPE: vocabulary sizing, pretokenizers, token bytes, documents, JSON save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from musicml.formats.abc import split_tunes
from musicml.tokenizers import bpe
from musicml.tokenizers.bpe import (
    BOS,
    FORMAT_TOKENS,
    SPECIAL_TOKENS,
    decode,
    effective_vocab_size,
    encode_documents,
    load,
    load_token_bytes,
    prompt_ids,
    save,
    token_bytes,
    train_bpe,
)

FLOOR = 256 + len(SPECIAL_TOKENS) + 64
EXTRA_DOCS = [
    "X:1\nT:Caf\u00e9 \u2019s Reel \u266a\nK:G\nGABc dedB|",  # multi-byte characters
    "\\title \"Tab\" .\n:4 0.6 3.6 | 5.5.8 7.5.8 |",
    "MIDI grid=4 vel=8\ntrack t0 program=0\nbar ts=4/4 tempo=120\nt0 @0 v88 C4:4 E4:4",
    "   leading spaces\n\n\ttabs\r\nand CRLF  ",
]


@pytest.fixture(scope="module")
def abc_texts(derived) -> list[str]:
    """The 720 tunes of one real collection (music21's corpus: Essen folk songs)."""
    text = derived.big_abc.read_text(encoding="utf-8")
    return [t.text for t in split_tunes(text)]


@pytest.fixture(scope="module", params=["nanochat", "bytelevel", "music"])
def trained(request, abc_texts):
    tok, info = train_bpe(abc_texts, vocab_size=1024, pretokenizer=request.param)
    return tok, info, request.param


# --- effective_vocab_size --------------------------------------------------------------------


def test_effective_vocab_size_rule() -> None:
    assert FLOOR == 324
    assert effective_vocab_size(8192, 10**9) == 8192              # big corpus: as requested
    assert effective_vocab_size(1000, 10**9) == 960               # rounded down to a multiple of 64
    assert effective_vocab_size(8192, 196_000) == 3008            # 196000 // 64 = 3062 -> 3008
    assert effective_vocab_size(8192, 64 * 1000) == 960           # one token per 64 bytes
    assert effective_vocab_size(8192, 0) == FLOOR                 # never below the floor
    assert effective_vocab_size(100, 10**9) == FLOOR
    assert effective_vocab_size(330, 10**9) == FLOOR              # 330 -> 320 < floor -> floor
    assert effective_vocab_size(384, 10**9) == 384


@pytest.mark.parametrize("requested", [1, 300, 324, 400, 1000, 5000, 65536])
@pytest.mark.parametrize("train_bytes", [0, 1000, 30_000, 300_000, 10**8])
def test_effective_vocab_size_properties(requested: int, train_bytes: int) -> None:
    size = effective_vocab_size(requested, train_bytes)
    assert size >= FLOOR
    assert size <= max(FLOOR, requested)
    assert size <= max(FLOOR, train_bytes // 64)
    assert size == FLOOR or size % 64 == 0
    assert effective_vocab_size(requested, train_bytes * 2) >= size  # more data never shrinks it


# --- training --------------------------------------------------------------------------------


def test_train_info(trained, abc_texts) -> None:
    tok, info, pre = trained
    assert info.pretokenizer == pre
    assert info.requested_vocab_size == 1024
    assert FLOOR <= info.vocab_size <= 1024 == effective_vocab_size(1024, info.train_bytes)
    assert info.vocab_size == tok.get_vocab_size()
    assert info.train_docs == len(abc_texts) > 700
    assert info.train_bytes == sum(len(t.encode()) for t in abc_texts)
    assert info.bos_id == tok.token_to_id(BOS)
    assert info.format_ids == {f: tok.token_to_id(t) for f, t in FORMAT_TOKENS.items()}
    assert len({info.bos_id, *info.format_ids.values()}) == 4
    assert len(info.digest) == 64
    # it learned merges: ABC compresses to well under one token per byte
    ids = tok.encode(abc_texts[0], add_special_tokens=False).ids
    assert len(ids) < 0.6 * len(abc_texts[0].encode())


def test_training_is_deterministic(trained, abc_texts) -> None:
    tok, info, pre = trained
    tok2, info2 = train_bpe(abc_texts, vocab_size=1024, pretokenizer=pre)
    assert info2.digest == info.digest
    assert tok2.to_str() == tok.to_str()


def test_token_bytes(trained, abc_texts) -> None:
    tok, _, _ = trained
    tb = token_bytes(tok)
    assert tb.dtype == np.int32 and tb.shape == (tok.get_vocab_size(),)
    for special in SPECIAL_TOKENS:
        assert tb[tok.token_to_id(special)] == 0
    assert (np.delete(tb, [tok.token_to_id(s) for s in SPECIAL_TOKENS]) >= 1).all()
    for doc in abc_texts[:50] + EXTRA_DOCS:
        ids = encode_documents(tok, ["abc"], [doc])[0]
        assert int(tb[ids].sum()) == len(doc.encode("utf-8"))


def test_encode_documents_and_decode_round_trip(trained, abc_texts) -> None:
    tok, info, _ = trained
    docs = abc_texts[:20] + EXTRA_DOCS
    fmts = ["abc"] * 20 + ["abc", "atex", "midi", "atex"]
    encoded = encode_documents(tok, fmts, docs)
    assert len(encoded) == len(docs)
    for ids, fmt, doc in zip(encoded, fmts, docs):
        assert ids[0] == info.bos_id
        assert ids[1] == info.format_ids[fmt]
        assert info.bos_id not in ids[1:]
        assert decode(tok, ids) == doc
        assert decode(tok, ids[2:]) == doc


def test_prompt_ids(trained) -> None:
    tok, info, _ = trained
    assert prompt_ids(tok, "midi") == [info.bos_id, info.format_ids["midi"]]
    ids = prompt_ids(tok, "abc", "X:1\n")
    assert ids[:2] == [info.bos_id, info.format_ids["abc"]] and decode(tok, ids) == "X:1\n"


def test_unknown_pretokenizer() -> None:
    with pytest.raises(ValueError, match="unknown pretokenizer"):
        train_bpe(["abc"], pretokenizer="words")


def test_tiny_corpus_trains(tmp_path: Path) -> None:
    tok, info = train_bpe(["X:1\nK:C\nCDEF|"] * 3, vocab_size=8192, pretokenizer="nanochat")
    assert info.vocab_size <= effective_vocab_size(8192, info.train_bytes) == FLOOR
    assert decode(tok, encode_documents(tok, ["abc"], ["CDEF|GABc"])[0]) == "CDEF|GABc"


# --- save / load -----------------------------------------------------------------------------


def test_save_load_round_trip(trained, abc_texts, tmp_path: Path) -> None:
    tok, info, _ = trained
    paths = save(tok, info, tmp_path / "tok")
    names = sorted(p.name for p in (tmp_path / "tok").iterdir())
    assert names == ["token_bytes.npy", "tokenizer.json", "tokenizer_info.json"]  # no temp files
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))
    assert {k: p.name for k, p in paths.items()} == {
        "tokenizer": "tokenizer.json", "info": "tokenizer_info.json", "token_bytes": "token_bytes.npy"}
    json.loads(paths["tokenizer"].read_text())  # plain JSON
    assert json.loads(paths["info"].read_text())["digest"] == info.digest
    tok2, info2 = load(tmp_path / "tok")
    assert info2 == info
    docs = abc_texts[:10] + EXTRA_DOCS
    assert encode_documents(tok2, ["abc"] * len(docs), docs) == encode_documents(tok, ["abc"] * len(docs), docs)
    tb = load_token_bytes(tmp_path / "tok")
    assert np.array_equal(tb, token_bytes(tok)) and tb.dtype == np.int32
    assert np.load(paths["token_bytes"], allow_pickle=False).shape == (tok.get_vocab_size(),)


def test_save_is_deterministic(trained, tmp_path: Path) -> None:
    tok, info, _ = trained
    save(tok, info, tmp_path / "a")
    save(tok, info, tmp_path / "b")
    for name in ("tokenizer.json", "tokenizer_info.json", "token_bytes.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_ignores_unknown_info_keys(trained, tmp_path: Path) -> None:
    tok, info, _ = trained
    paths = save(tok, info, tmp_path / "t")
    raw = json.loads(paths["info"].read_text())
    raw["added_later"] = 1
    paths["info"].write_text(json.dumps(raw))
    assert load(tmp_path / "t")[1] == info


def test_module_exports() -> None:
    assert bpe.PRETOKENIZERS == ("music", "nanochat", "bytelevel")
    assert SPECIAL_TOKENS[0] == BOS and set(FORMAT_TOKENS) == {"atex", "abc", "midi"}
