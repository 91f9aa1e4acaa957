"""Evaluation: bits per byte and per note, the unigram baseline on the same tokens, and the
evaluation step writing one set of figures to evaluation.json and MLflow.

The lake is built by the workflow's own steps from real music (the smallest ABC files of
music21's bundled corpus), char tokenizer, so it is small and fast.
"""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch

from musicml import shards, tracking, workflow
from musicml.curate.augment import AugmentConfig
from musicml.curate.splits import SplitConfig
from musicml.evaluate.bpb import SplitNLL, bits_per_byte, split_nll, unigram_bpb, unigram_nll
from musicml.evaluate.bpn import bits_per_note, document_notes, shard_doc_ids, split_notes
from musicml.ingest import parsed
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake, read_json
from musicml.tokenizers import load_codec

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_torch_thread")]


class Uniform(torch.nn.Module):
    """A model that gives every one of ``vocab`` tokens the same probability."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, y, loss_reduction="none"):
        return torch.full(y.shape, math.log(self.vocab), dtype=torch.float32)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("eval-lake").resolve()
    lk = Lake(root=root, raw_dir=root / "raw")
    lk.raw_dir.mkdir()
    for f in sorted(music21_abc_files(), key=lambda p: (p.stat().st_size, p.name))[:16]:
        shutil.copy(f, lk.raw_dir / f.name)
    workflow.ingest_step(lk, seed_default_corpus=False)
    workflow.parse_step(lk)
    workflow.dedup_step(lk)
    workflow.augment_step(lk, AugmentConfig(min_shift=-1, max_shift=1))
    workflow.split_step(lk, SplitConfig(valid_ratio=0.2, test_ratio=0.2, min_valid_works=2, min_test_works=2))
    workflow.tokenizer_step(lk, kind="char")
    workflow.shards_step(lk)
    return lk


def paths(lk: Lake, split: str):
    return shards.shard_paths(lk.path("shards"), split)


def counted_tokens(lk: Lake, split: str, tb: np.ndarray) -> tuple[int, int]:
    """(tokens with bytes > 0, their bytes) of every document of the split, read directly."""
    n = b = 0
    for p in paths(lk, split):
        for doc in pq.read_table(p, columns=["tokens"]).column("tokens").to_pylist():
            arr = np.asarray(doc)
            n += int((tb[arr] > 0).sum())
            b += int(tb[arr].sum())
    return n, b


def test_uniform_model_bits_per_byte_and_note_by_hand(lake) -> None:
    codec = load_codec(lake.path("tokenizer"))
    tb = np.asarray(codec.token_bytes())
    model = Uniform(codec.vocab_size)
    targets, nbytes = counted_tokens(lake, "valid", tb)
    nll = split_nll(model, paths(lake, "valid"), tb, seq_len=64, batch_size=4)
    assert (nll.targets, nll.bytes) == (targets, nbytes)  # every content token scored once
    assert nll.bits == pytest.approx(targets * math.log2(codec.vocab_size))
    pieces = parsed.read_pieces(lake, ["piece_id", "n_notes"])
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"), columns=["aug_id", "piece_id"])
    docs = shard_doc_ids(paths(lake, "valid"))
    notes = int(aug.filter(pl.col("aug_id").is_in(docs)).join(pieces, on="piece_id")["n_notes"].sum())
    assert notes > 0 and split_notes(lake, paths(lake, "valid")) == notes
    assert bits_per_note(nll, notes) == pytest.approx(targets * math.log2(codec.vocab_size) / notes)
    assert bits_per_byte(model, paths(lake, "valid"), tb, seq_len=64, batch_size=4) == pytest.approx(
        math.log2(codec.vocab_size) * targets / nbytes)


def test_bits_per_note_without_notes_is_nan() -> None:
    assert math.isnan(bits_per_note(SplitNLL(1.0, 1, 1), 0))


def test_unigram_scores_the_model_s_tokens(lake) -> None:
    codec = load_codec(lake.path("tokenizer"))
    tb = np.asarray(codec.token_bytes())
    model = Uniform(codec.vocab_size)
    for cap in (None, 200):
        nll = split_nll(model, paths(lake, "test"), tb, seq_len=64, batch_size=4, max_tokens=cap)
        uni = unigram_nll(paths(lake, "train"), paths(lake, "test"), tb, seq_len=64, max_tokens=cap)
        assert (uni.bytes, uni.targets) == (nll.bytes, nll.targets), cap
    full = counted_tokens(lake, "test", tb)
    assert nll.targets < full[0]  # the cap really cut the split
    # over the whole split the packed positions are every content token: the old count-based figure
    whole = unigram_nll(paths(lake, "train"), paths(lake, "test"), tb, seq_len=64)
    assert whole.bpb == pytest.approx(unigram_bpb(paths(lake, "train"), paths(lake, "test"), tb))


def test_document_notes_refuses_unknown_documents(lake) -> None:
    with pytest.raises(ValueError, match="not in the augmented table"):
        document_notes(lake, ["no-such-doc"])


def test_pitch_shifted_copies_count_their_original_s_notes(lake) -> None:
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"), columns=["aug_id", "piece_id", "shift"])
    shifted = aug.filter(pl.col("shift") != 0).head(3)
    originals = aug.filter(pl.col("shift") == 0).filter(pl.col("piece_id").is_in(shifted["piece_id"].implode()))
    a = dict(document_notes(lake, shifted["aug_id"].to_list()).join(
        shifted, left_on="doc_id", right_on="aug_id").select("piece_id", "notes").iter_rows())
    b = dict(document_notes(lake, originals["aug_id"].to_list()).join(
        originals, left_on="doc_id", right_on="aug_id").select("piece_id", "notes").iter_rows())
    assert a and a == {k: b[k] for k in a}


@pytest.fixture(scope="module")
def evaluated(lake, tmp_path_factory):
    """A 1-layer GPT trained for a few steps, evaluated twice (the second with other settings)."""
    from musicml.train import TrainConfig

    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.chdir(store)
        cfg = TrainConfig(family="gpt", model={"n_layer": 1, "n_embd": 32, "n_head": 2}, seq_len=64,
                          device_batch_size=4, max_steps=6, eval_every=3, eval_tokens=256,
                          checkpoint_every=3, device="cpu", window_docs=32)
        run = workflow.train_step(lake, cfg, tracking_uri=uri)
        first = workflow.evaluate_step(lake, tracking_uri=uri, validity_samples=2, max_new_tokens=48,
                                       device="cpu", max_tokens=256)
        second = workflow.evaluate_step(lake, tracking_uri=uri, validity_samples=2, max_new_tokens=48,
                                        device="cpu")
    return uri, run, first, second


def test_mlflow_latest_equals_evaluation_json(evaluated) -> None:
    uri, run, first, second = evaluated
    assert first["val_bpb"] != second["val_bpb"]  # capped vs whole split: two different figures
    latest = tracking.client(uri).get_run(run.mlflow_run_id).data.metrics
    saved = read_json(run.run_dir / "evaluation.json")
    assert saved == second
    for key, value in second.items():
        assert latest[key] == pytest.approx(value, rel=1e-12), key
    # the training-time estimate keeps its own name and is not what MLflow shows as val_bpb
    assert "val_bpb_estimate" in latest


def test_evaluation_figures(evaluated) -> None:
    _, _, first, second = evaluated
    for key in ("val_bpb", "test_bpb", "unigram_val_bpb", "unigram_test_bpb", "val_bpn", "test_bpn",
                "unigram_val_bpn", "unigram_test_bpn", "abc_syntax_valid_rate", "abc_playable_rate",
                "abc_musical_valid_rate", "oa_ref_pitch_range", "mm_test_pitch_range"):
        assert key in second, key
    assert "val_bpn" not in first  # a capped pass scores part of the documents: no bits per note
    assert second["val_bpn"] == pytest.approx(second["val_bpb"] * second["val_bytes"] / second["val_notes"])
    assert second["unigram_val_bpn"] > second["val_bpn"] > 0
    assert all(0 <= v <= 1 for k, v in second.items() if k.startswith("oa_"))
