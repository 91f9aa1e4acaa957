"""Char tokenizer: vocabulary, the unseen-character policy, JSON, bytes; real ABC text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicml.tokenizers.char import BOS, UNK, CharTokenizer


def test_vocab_is_sorted_with_specials_first():
    tok = CharTokenizer.train(["cab", "ba!"], special_tokens=["<|abc|>"])
    assert tok.itos == [BOS, UNK, "<|abc|>", "!", "a", "b", "c"]
    assert (tok.bos_id, tok.unk_id, tok.special_id("<|abc|>")) == (0, 1, 2)
    assert tok.vocab_size == 7
    assert CharTokenizer.train("bca").itos == CharTokenizer.train(["abc"]).itos


def test_unseen_characters_map_to_unk_and_are_counted():
    tok = CharTokenizer.train("abc")
    ids, missing = tok.encode_with_report("abxcyx", bos=True)
    assert ids == [tok.bos_id, 2, 3, tok.unk_id, 4, tok.unk_id, tok.unk_id]
    assert missing == {"x": 2, "y": 1}
    tok.encode("zz")
    assert tok.unknown_counts == {"x": 2, "y": 1, "z": 2}
    assert tok.decode(ids) == "ab\ufffdc\ufffd\ufffd"
    assert tok.decode(ids, keep_special=True).startswith(BOS)


def test_token_bytes():
    tok = CharTokenizer.train("aé♪")
    tb = tok.token_bytes()
    assert tb.dtype == np.int32 and len(tb) == tok.vocab_size
    assert tb.tolist() == [0, 0, 1, 2, 3]


def test_json_roundtrip_is_byte_identical(tmp_path):
    tok = CharTokenizer.train("X:1\nK:D\n|:abc:|é", special_tokens=["<|abc|>"])
    p1 = tok.save(tmp_path / "a.json")
    loaded = CharTokenizer.load(p1)
    assert loaded.itos == tok.itos
    p2 = loaded.save(tmp_path / "b.json")
    assert p1.read_bytes() == p2.read_bytes()
    assert json.loads(p1.read_text(encoding="utf-8"))["kind"] == "char"
    with pytest.raises(ValueError):
        CharTokenizer.from_dict({"kind": "bpe"})


def test_real_abc_roundtrip(derived):
    text = derived.big_abc.read_text(encoding="utf-8")
    tunes = [t for t in text.split("\n\n") if t.strip()]
    train, held_out = tunes[: len(tunes) * 9 // 10], tunes[len(tunes) * 9 // 10:]
    tok = CharTokenizer.train(train)
    for tune in train[:50]:
        ids = tok.encode(tune, bos=True)
        assert ids[0] == tok.bos_id and tok.decode(ids) == tune
    ids, missing = tok.encode_with_report("\n\n".join(held_out))
    assert ids.count(tok.unk_id) == sum(missing.values())
    tb = tok.token_bytes()
    assert int(tb[ids].sum()) + sum(len(c.encode()) for c in missing.elements()) == len(
        "\n\n".join(held_out).encode("utf-8"))
