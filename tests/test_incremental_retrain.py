"""Incremental retraining: the tokenizer kept when it still covers the data, shards re-encoding
only new documents (and identical to a from-scratch build), training warm-started.

Lakes are written directly at the ``splits`` stage from real tunes of music21's ABC corpus
(``musicml.ingest.corpus.music21_abc_files``; split into tunes, not parsed), so the steps under
test run in a second or two.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_workflow_resume import template_db  # noqa: F401  (a fixture)

from musicml import workflow
from musicml.formats.abc.reader import split_tunes
from musicml.ingest.corpus import music21_abc_files
from musicml.lake import Lake, read_json, write_parquet
from musicml.shards.cache import CACHE_DIR, TokenCache, doc_keys
from musicml.tokenizers import TokenizerConfig, load_codec, retrain
from musicml.train import TrainConfig

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:mlflow")]

VOCAB = 384  # fits the tiny corpora without the small-corpus shrink changing as they grow


def tunes(n: int, start: int = 0) -> list[str]:
    """``n`` real ABC tunes (music21's corpus, first file with enough of them)."""
    out: list[str] = []
    for path in music21_abc_files():
        out += [t.text for t in split_tunes(path.read_text(encoding="utf-8", errors="replace")) if t.text.strip()]
        if len(out) >= start + n:
            return out[start:start + n]
    raise AssertionError("music21's corpus has too few tunes")


def write_lake(root: Path, texts: list[str], *, evaluation: int = 8) -> Lake:
    """A lake at the splits stage: the last ``2 * evaluation`` texts are valid and test."""
    lake = Lake(root=root.resolve(), raw_dir=root.resolve() / "raw")
    n = len(texts)
    rows = [{"aug_id": f"a{i:04d}", "piece_id": f"p{i:04d}", "work_id": f"w{i:04d}", "format": "abc",
             "shift": 0, "text": t, "text_bytes": len(t.encode("utf-8"))} for i, t in enumerate(texts)]
    aug = pl.DataFrame(rows, schema_overrides={"shift": pl.Int8})
    write_parquet(lake.path("curated", "augmented.parquet"), aug)
    split = ["valid"] * evaluation + ["test"] * evaluation + ["train"] * (n - 2 * evaluation)
    write_parquet(lake.path("curated", "splits.parquet"),
                  pl.DataFrame({"row_id": aug["aug_id"], "kind": ["augmented"] * n, "split": split}))
    return lake


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return tunes(210)


# -- 1. keeping the tokenizer -------------------------------------------------------------------


def test_tokenizer_is_kept_when_it_covers_the_new_data_and_the_decision_is_recorded(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    first = workflow.tokenizer_step(lake, vocab_size=VOCAB)
    assert first.info["retrain"]["action"] == "trained"
    assert first.info["retrain"]["reason"] == "no saved tokenizer"
    assert first.info["config"] == retrain.training_settings(TokenizerConfig(vocab_size=VOCAB))
    trained_bpt = first.info["bytes_per_token"]["abc"]
    assert 1.0 < trained_bpt < 10.0

    write_lake(tmp_path, corpus)  # 10 more tunes (5%)
    kept = workflow.tokenizer_step(lake, vocab_size=VOCAB)
    decision = read_json(lake.path("tokenizer", "tokenizer_info.json"))["retrain"]
    assert decision["action"] == "kept" and decision["mode"] == "auto"
    assert decision["reason"] == "same settings and it covers the train split"
    assert kept.digest == first.digest
    figures = decision["figures"]
    now = figures["train_split"]["bytes_per_token"]["abc"]
    assert now >= (1 - TokenizerConfig.keep_tolerance) * trained_bpt
    assert figures["trained_on"]["bytes_per_token"] == {"abc": trained_bpt}
    assert figures["train_split"]["cache"]["encoded"] == 10  # only the new tunes were encoded
    assert load_codec(lake.path("tokenizer")).info["bytes_per_token"] == {"abc": trained_bpt}


def test_other_settings_always_and_never(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    first = workflow.tokenizer_step(lake, vocab_size=VOCAB)
    other = workflow.tokenizer_step(lake, vocab_size=VOCAB + 64)
    assert other.info["retrain"]["action"] == "trained"
    assert other.info["retrain"]["reason"] == f"trained with other settings: vocab_size {VOCAB} -> {VOCAB + 64}"
    assert workflow.tokenizer_step(lake, vocab_size=VOCAB, retrain="always").info["retrain"]["reason"] == \
        "retrain: always"
    never = workflow.tokenizer_step(lake, vocab_size=VOCAB + 128, retrain="never")
    assert never.info["retrain"]["action"] == "kept" and never.digest == first.digest  # whatever its settings


def test_char_tokenizer_is_retrained_for_an_unseen_character(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:40])
    workflow.tokenizer_step(lake, kind="char")
    write_lake(tmp_path, corpus[:40] + corpus[20:22])  # train tunes again: nothing new
    assert workflow.tokenizer_step(lake, kind="char").info["retrain"]["action"] == "kept"
    seen = set("".join(corpus[:40]))
    new_char = next(c for c in "ÆØÅßœ€" if c not in seen)
    write_lake(tmp_path, corpus[:40] + [corpus[20].replace("T:", f"T:{new_char} ", 1)])
    codec = workflow.tokenizer_step(lake, kind="char")
    assert codec.info["retrain"]["action"] == "trained"
    assert codec.info["retrain"]["reason"] == "1 characters of the train split are not in its vocabulary"
    assert codec.info["retrain"]["figures"]["train_split"]["unknown_tokens"] == 1


def test_compression_rule_and_bad_inputs():
    cfg = TokenizerConfig(keep_tolerance=0.05)
    saved = {"kind": "bpe", "bytes_per_token": {"abc": 3.0}}
    assert retrain.covers(cfg, saved, {"bytes_per_token": {"abc": 2.86}}) is None
    assert retrain.covers(cfg, saved, {"bytes_per_token": {"abc": 2.84}}).startswith(
        "abc: 2.8400 bytes per token on the train split, below 2.8500")
    assert retrain.covers(cfg, saved, {"bytes_per_token": {"abc": 3.0, "atex": 4.0}}) == \
        "format 'atex' is new to it (trained on ['abc'])"
    assert retrain.covers(cfg, {"kind": "bpe"}, {}) == "no bytes-per-token figure recorded for its training data"
    assert retrain.covers(cfg, {"kind": "remi", "bpe": False}, {}) is None  # events: the settings' vocabulary
    assert retrain.settings_differ(cfg, {"kind": "bpe"}, 0) == "the saved tokenizer has no recorded settings"
    with pytest.raises(ValueError, match="unknown retrain mode 'sometimes'"):
        retrain.decide(TokenizerConfig(retrain="sometimes"), None, None)
    with pytest.raises(ValueError, match="1 formats, 2 byte counts"):
        retrain.measure(None, ["abc"], [1, 2], [[0, 1]])


def test_unreadable_saved_tokenizer_is_retrained_with_the_reason(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    workflow.tokenizer_step(lake, vocab_size=VOCAB)
    lake.path("tokenizer", "tokenizer.json").write_text("{not json")
    codec = workflow.tokenizer_step(lake, vocab_size=VOCAB)
    assert codec.info["retrain"]["action"] == "trained"
    assert codec.info["retrain"]["reason"].startswith("the saved tokenizer could not be read (")
    with pytest.raises(ValueError, match="unknown retrain mode"):
        workflow.tokenizer_step(lake, retrain="maybe")


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_a_tokenizer_json_of_another_tokenizer_is_refused_and_retrained(tmp_path, corpus, kind):
    lake = write_lake(tmp_path / "a", corpus[:200])
    other = write_lake(tmp_path / "b", corpus[:100])
    workflow.tokenizer_step(lake, kind=kind, vocab_size=VOCAB)
    workflow.tokenizer_step(other, kind=kind, vocab_size=VOCAB)
    shutil.copy(other.path("tokenizer", "tokenizer.json"), lake.path("tokenizer", "tokenizer.json"))
    with pytest.raises(ValueError, match="does not match tokenizer_info.json's digest"):
        load_codec(lake.path("tokenizer"))
    codec = workflow.tokenizer_step(lake, kind=kind, vocab_size=VOCAB)
    assert codec.info["retrain"]["reason"].startswith("the saved tokenizer could not be read (ValueError: ")


def test_a_grown_corpus_resizes_a_shrunk_vocabulary(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:30])  # small: BPE 8192 shrinks to what the bytes allow
    small = workflow.tokenizer_step(lake)
    write_lake(tmp_path, corpus)
    grown = workflow.tokenizer_step(lake)
    assert grown.info["retrain"]["action"] == "trained"
    assert "the saved one was sized" in grown.info["retrain"]["reason"]
    assert grown.vocab_size > small.vocab_size


# -- 2. shards for changed works only ------------------------------------------------------------


def test_shards_reencode_only_new_documents_and_match_a_from_scratch_build(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    workflow.tokenizer_step(lake, vocab_size=VOCAB)
    first = workflow.shards_step(lake)
    assert first["token_cache"]["encoded"] == 16  # train docs were cached by the tokenizer step
    again = workflow.shards_step(lake)
    assert again["token_cache"] == {"documents": 200, "cached": 200, "encoded": 0, "encode_s": 0.0}
    assert again["digest"] == first["digest"]

    write_lake(tmp_path, corpus)
    assert workflow.tokenizer_step(lake, vocab_size=VOCAB).info["retrain"]["action"] == "kept"
    incremental = workflow.shards_step(lake)
    assert incremental["token_cache"]["encoded"] == 0  # the 10 new train tunes: by the tokenizer step
    assert incremental["digest"] != first["digest"]
    scratch = workflow.shards_step(lake, cache_tokens=False)
    assert scratch["token_cache"] is None
    assert scratch["digest"] == incremental["digest"]
    assert read_json(lake.path("shards", "manifest.json"))["digest"] == incremental["digest"]
    assert "token_cache" not in read_json(lake.path("shards", "manifest.json"))


def test_cached_tokens_are_the_encoders(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    codec = workflow.tokenizer_step(lake, vocab_size=VOCAB)
    texts, formats = corpus[200:204], ["abc"] * 4
    cache = TokenCache(tmp_path / "cache", codec.digest)
    fresh, stats = cache.encode(codec, formats + ["abc"], texts + texts[:1])
    assert (stats.encoded, stats.cached) == (4, 0)  # a repeated text is encoded once
    cached, stats = TokenCache(tmp_path / "cache", codec.digest).encode(codec, formats + ["abc"], texts + texts[:1])
    assert (stats.encoded, stats.cached) == (0, 5)
    direct = codec.encode_documents(formats, texts)
    assert [c.tolist() for c in cached[:4]] == direct and [f.tolist() for f in fresh[:4]] == direct
    assert doc_keys(["abc"], ["x"]) != doc_keys(["midi"], ["x"])  # the format is part of the key
    with pytest.raises(ValueError, match="needs the tokenizer's digest"):
        TokenCache(tmp_path / "cache", "")
    with pytest.raises(ValueError, match="2 keys for 1 texts"):
        cache.encode(codec, ["abc"], ["x"], keys=["a", "b"])


def test_cache_keeps_the_newest_tokenizers_only(tmp_path, corpus):
    lake = write_lake(tmp_path, corpus[:200])
    for size in (VOCAB, VOCAB + 64, VOCAB + 128):
        workflow.tokenizer_step(lake, vocab_size=size)
    kept = sorted(p.name for p in lake.path("shards", CACHE_DIR).iterdir())
    assert len(kept) == 2 and load_codec(lake.path("tokenizer")).digest[:16] in kept


def test_assets_report_the_decision_and_the_cache(tmp_path, corpus):
    import dagster as dg

    from pipelines.assets.tokens import token_shards, tokenizer
    from pipelines.resources import LakeResource

    lake = write_lake(tmp_path, corpus[:200])
    resources = {"lake": LakeResource(root=str(lake.root), raw_dir=str(lake.root / "raw"))}
    run_config = {"ops": {"tokenizer": {"config": {"vocab_size": VOCAB}}}}
    with dg.instance_for_test() as instance:
        first = dg.materialize([tokenizer, token_shards], run_config=run_config, resources=resources,
                               instance=instance)
        assert first.asset_materializations_for_node("tokenizer")[0].metadata["retrain"].value == "trained"
        write_lake(tmp_path, corpus)
        second = dg.materialize([tokenizer, token_shards], run_config=run_config, resources=resources,
                                instance=instance)
    meta = second.asset_materializations_for_node("tokenizer")[0].metadata
    assert (meta["retrain"].value, meta["retrain_reason"].value) == (
        "kept", "same settings and it covers the train split")
    assert meta["retrain_figures"].value["train_split"]["cache"]["encoded"] == 10
    assert set(meta["bytes_per_token"].value) == {"abc"}
    shards_meta = second.asset_materializations_for_node("token_shards")[0].metadata
    assert (shards_meta["token_cache_documents"].value, shards_meta["token_cache_encoded"].value) == (210, 0)


# -- 3. warm start ------------------------------------------------------------------------------

TINY = dict(family="gpt", model={"n_layer": 1, "n_embd": 32, "n_head": 2}, seq_len=64, device_batch_size=4,
            max_steps=6, eval_every=6, eval_tokens=512, checkpoint_every=0, device="cpu", window_docs=32)


@pytest.fixture(scope="module")
def trained_lake(tmp_path_factory, template_db, corpus):  # noqa: F811
    """A lake with char tokenizer, shards and one finished tiny training."""
    root = tmp_path_factory.mktemp("warm")
    lake = write_lake(root, corpus[:40])
    workflow.tokenizer_step(lake, kind="char")
    workflow.shards_step(lake)
    shutil.copy(template_db, lake.root / "mlflow.db")
    uri = f"sqlite:///{lake.root / 'mlflow.db'}"
    run = workflow.train_step(lake, TrainConfig(**TINY), tracking_uri=uri)
    return lake, uri, run


def first_val_bpb(run: workflow.TrainingRun) -> float:
    for line in (run.run_dir / "log.jsonl").read_text().splitlines():
        if "val_bpb_estimate" in (rec := json.loads(line)):
            return rec["val_bpb_estimate"]
    raise AssertionError("no val_bpb_estimate logged")


def test_warm_start_from_latest_takes_its_weights_only(trained_lake):
    from musicml import tracking

    lake, uri, base = trained_lake
    warm = workflow.train_step(lake, TrainConfig(**{**TINY, "max_steps": 4, "warm_start": "latest"}),
                               tracking_uri=uri)
    assert warm.name != base.name  # warm_start is part of the run name
    assert warm.result["warm_started_from"] == base.checkpoint
    assert warm.result["steps"] == 4  # the step count starts at 0, not at the source's
    # step 0's evaluation of the warm-started model is the source's final one, exactly
    assert first_val_bpb(warm) == pytest.approx(base.result["val_bpb"], rel=1e-6)
    params = tracking.client(uri).get_run(warm.mlflow_run_id).data.params
    assert params["warm_started_from"] == base.checkpoint and params["train.warm_start"] == "latest"
    fresh = workflow.train_step(lake, TrainConfig(**{**TINY, "max_steps": 4}), tracking_uri=uri)
    assert fresh.result["warm_started_from"] is None
    assert first_val_bpb(fresh) > base.result["val_bpb"]
    assert tracking.client(uri).get_run(fresh.mlflow_run_id).data.params["warm_started_from"] == "none"


def test_warm_start_with_another_shape_starts_fresh_with_the_reason(trained_lake):
    lake, uri, base = trained_lake
    workflow.train_step(lake, TrainConfig(**TINY), tracking_uri=uri)  # latest: the base run again
    cfg = TrainConfig(**{**TINY, "model": {"n_layer": 1, "n_embd": 16, "n_head": 2}, "warm_start": "latest"})
    run = workflow.train_step(lake, cfg, tracking_uri=uri)
    assert run.result["warm_started_from"] is None
    assert run.result["warm_start_note"].startswith("started fresh: parameter shapes differ: ")


def test_warm_start_refuses_another_tokenizer_and_missing_sources(trained_lake, tmp_path):
    lake, uri, base = trained_lake
    workflow.train_step(lake, TrainConfig(**TINY), tracking_uri=uri)
    manifest = read_json(lake.path("shards", "manifest.json"))
    cfg = TrainConfig(**{**TINY, "warm_start": "latest"})
    other = workflow.resolve_warm_start(lake, cfg, "f" * 64, manifest, tmp_path, tracking_uri=uri)
    assert other["reason"].startswith(f"run {base.name} was trained with tokenizer ")
    empty = Lake(root=tmp_path, raw_dir=tmp_path / "raw")
    none = workflow.resolve_warm_start(empty, cfg, "f" * 64, manifest, tmp_path, tracking_uri=uri)
    assert none["reason"].startswith("no finished training to start from")
    champion = workflow.resolve_warm_start(lake, TrainConfig(**{**TINY, "warm_start": "champion"}), "f" * 64,
                                           manifest, tmp_path, tracking_uri=uri)
    assert champion["reason"].startswith("no champion to start from: models:/musicml-abc@champion")
    with pytest.raises(ValueError, match="unknown warm_start 'best'"):
        workflow.resolve_warm_start(lake, TrainConfig(**{**TINY, "warm_start": "best"}), "", manifest, tmp_path,
                                    tracking_uri=uri)
    with pytest.raises(ValueError, match="unknown warm_start 'best'"):
        workflow.train_step(lake, TrainConfig(**{**TINY, "warm_start": "best"}), tracking_uri=uri)


def test_warm_start_from_the_registry_champion(trained_lake):
    from musicml import registry

    lake, uri, base = trained_lake
    digest = registry.test_split_digest(lake)
    decision = registry.log_and_register(uri, base.mlflow_run_id, base.checkpoint, lake.path("tokenizer"),
                                         {"family": "gpt"}, {"test_bpb": 3.0}, digest, formats=["abc"])
    assert decision["decision"] == registry.FIRST
    cfg = TrainConfig(**{**TINY, "max_steps": 2, "warm_start": "champion"})
    run = workflow.train_step(lake, cfg, tracking_uri=uri)
    source = Path(run.result["warm_started_from"])
    assert source.name == "checkpoint.pt" and (run.run_dir / "warm_start_model") in source.parents
    assert "models:/musicml-abc@champion" in read_json(run.run_dir / "warm_start.json")["from"]
    assert first_val_bpb(run) == pytest.approx(base.result["val_bpb"], rel=1e-6)
    assert np.isfinite(run.result["train_loss"])


def test_warm_start_is_part_of_the_run_name_and_none_keeps_the_old_name():
    import hashlib

    cfg = TrainConfig(**TINY)
    key = {k: v for k, v in cfg.to_dict().items() if k not in ("time_budget_s", "warm_start")}
    old = f"gpt-{'d' * 8}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]}"
    assert workflow.run_name(cfg, "d" * 64) == old  # runs named before warm_start existed still resume
    names = {workflow.run_name(TrainConfig(**{**TINY, "warm_start": w}), "d" * 64) for w in ("none", "latest", "champion")}
    assert len(names) == 3


def test_loop_without_a_resolved_source_starts_fresh_and_says_why(trained_lake, tmp_path):
    from musicml.train import train

    lake, _, _ = trained_lake
    tb = np.load(lake.path("tokenizer", "token_bytes.npy"))
    bos = load_codec(lake.path("tokenizer")).bos_id
    cfg = TrainConfig(**{**TINY, "max_steps": 1, "eval_every": 0, "warm_start": "latest"})
    result = train(cfg, lake.path("shards"), tmp_path / "run", bos_id=bos, token_bytes=tb)
    assert result.warm_started_from is None
    assert result.warm_start_note == f"started fresh: no warm_start.json in {tmp_path / 'run'} names a checkpoint"
    with pytest.raises(ValueError, match="unknown warm_start 'best'"):
        train(TrainConfig(**{**TINY, "warm_start": "best"}), lake.path("shards"), tmp_path / "r2", bos_id=bos,
              token_bytes=tb)


def test_weights_of_another_family_or_vocabulary_are_refused():
    import torch

    from musicml.train.loop import _weights_mismatch

    own = {"w": torch.zeros(4, 2)}
    state = {"family": "gpt", "model_config": {"vocab_size": 10}, "model": {"w": torch.zeros(4, 2)}}
    assert _weights_mismatch(state, "gpt", {"vocab_size": 10}, own) is None
    assert _weights_mismatch(state, "lstm", {"vocab_size": 10}, own) == \
        "the checkpoint is a 'gpt' model, this run a 'lstm' one"
    assert _weights_mismatch(state, "gpt", {"vocab_size": 12}, own) == \
        "the checkpoint's vocabulary has 10 tokens, this run's 12"
    assert _weights_mismatch(state, "gpt", {"vocab_size": 10}, {"v": torch.zeros(1)}).startswith(
        "the checkpoint's parameters differ")
