"""BPE's default pre-tokenization: ``auto`` resolves per format from the measured table."""

from __future__ import annotations

import pytest

from musicml.formats import FORMATS
from musicml.tokenizers.bpe import (
    AUTO,
    DEFAULT_PRETOKENIZER,
    PRETOKENIZER_BY_FORMAT,
    PRETOKENIZERS,
    resolve_pretokenizer,
    train_bpe,
)


def test_default_is_auto_and_every_format_has_a_measured_choice() -> None:
    assert DEFAULT_PRETOKENIZER == AUTO
    assert set(PRETOKENIZER_BY_FORMAT) == set(FORMATS)
    assert set(PRETOKENIZER_BY_FORMAT.values()) <= set(PRETOKENIZERS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_auto_for_one_format(fmt: str) -> None:
    assert resolve_pretokenizer(AUTO, [fmt, fmt]) == PRETOKENIZER_BY_FORMAT[fmt]


def test_explicit_names_pass_through() -> None:
    for name in PRETOKENIZERS:
        assert resolve_pretokenizer(name) == name
        assert resolve_pretokenizer(name, ["midi"]) == name


def test_mixed_corpus_follows_the_format_with_most_bytes() -> None:
    formats = ["abc", "midi", "midi"]
    assert resolve_pretokenizer(AUTO, formats, ["X:1\n" * 100, "MIDI", "MIDI"]) == PRETOKENIZER_BY_FORMAT["abc"]
    assert resolve_pretokenizer(AUTO, formats, ["X:1", "MIDI " * 50, "MIDI"]) == PRETOKENIZER_BY_FORMAT["midi"]
    assert resolve_pretokenizer(AUTO, formats) == PRETOKENIZER_BY_FORMAT["midi"]  # no texts: by count


@pytest.mark.parametrize(
    ("name", "formats", "message"),
    [
        ("words", None, "unknown pretokenizer 'words'"),
        (AUTO, None, "needs the format of every text"),
        (AUTO, [], "needs the format of every text"),
        (AUTO, ["xml"], "no choice for format 'xml'"),
    ],
)
def test_bad_requests_raise(name, formats, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_pretokenizer(name, formats)


def test_train_bpe_records_the_resolved_choice(derived) -> None:
    texts = [p.read_text(encoding="utf-8") for p in derived.abc_files[:4]]
    tok, info = train_bpe(texts, vocab_size=512, formats=["abc"] * len(texts))
    assert info.pretokenizer == PRETOKENIZER_BY_FORMAT["abc"]
    assert tok.decode(tok.encode(texts[0]).ids) == texts[0]
    with pytest.raises(ValueError, match="1 formats for 4 texts"):
        train_bpe(texts, formats=["abc"])
    with pytest.raises(ValueError, match="needs the format of every text"):
        train_bpe(texts)  # auto, the default, needs formats
